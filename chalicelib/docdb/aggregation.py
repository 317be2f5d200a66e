"""Aggregation pipelines: which stages may run, what they read, and how much they cost.

Every stage is checked in its exact documented shape before the driver sees
the pipeline: filters (``$match``, ``$graphLookup``'s restriction) go through
the allowlist's query walk and every expression through its expression walk,
so a pipeline can use exactly the operators a find or an update can.  Stages
that write (``$out``, ``$merge``), run JavaScript, or report on the server
(``$currentOp``, ``$collStats``, …) are refused, as is any stage not listed.

``$lookup``, ``$graphLookup`` and ``$unionWith`` name collections of the same
database; :func:`check_pipeline` returns every collection named anywhere, at
any depth, so the view can check each against the caller's grants.  Refusals
name the stage by its position: ``pipeline[2].$lookup.pipeline[0].$match``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.docdb import allowlist, budget
from chalicelib.errors import BadRequestError

MAX_STAGES = 50  # in all, sub-pipelines included
MAX_SAMPLE_SIZE = 10_000
MAX_BUCKETS = 1_000
NEVER = {
    "$out": "it writes to a collection",
    "$merge": "it writes to a collection",
    "$function": "it runs server-side JavaScript",
    "$accumulator": "it runs server-side JavaScript",
    "$where": "it runs server-side JavaScript",
    "$currentOp": "it reports on the server, not on your data",
    "$listSessions": "it reports on the server, not on your data",
    "$listLocalSessions": "it reports on the server, not on your data",
    "$collStats": "it reports on the server, not on your data",
    "$indexStats": "it reports on the server, not on your data",
    "$planCacheStats": "it reports on the server, not on your data",
    "$changeStream": "it opens a change stream, which this API does not serve",
}


class _Checker:
    """One walk over a pipeline: counts stages and collects the collections it reads."""

    def __init__(self) -> None:
        self.stages = 0
        self.reads: set[str] = set()

    def pipeline(self, stages: Any, where: str) -> None:
        if not isinstance(stages, list):
            raise BadRequestError(f"{where} must be an array of stages")
        for index, stage in enumerate(stages):
            self.stage(stage, f"{where}[{index}]")

    def stage(self, stage: Any, where: str) -> None:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise BadRequestError(f'{where} must be one stage, e.g. {{"$match": {{...}}}}')
        [(name, spec)] = stage.items()
        if name in NEVER:
            raise allowlist.OperatorNotAllowedError(name, where, f"{NEVER[name]}, which this API never allows")
        check = _STAGES.get(name)
        if check is None:
            allowed = ", ".join(sorted(_STAGES))
            raise allowlist.OperatorNotAllowedError(str(name), where, f"it is not a stage this API runs; use {allowed}")
        self.stages += 1
        if self.stages > MAX_STAGES:
            raise BadRequestError(f"a pipeline takes at most {MAX_STAGES} stages in all, sub-pipelines included")
        check(self, spec, f"{where}.{name}")

    def collection(self, name: Any, where: str) -> None:
        if not isinstance(name, str) or not name:
            raise BadRequestError(f"{where} takes the name of a collection of the same database")
        allowlist.check_text(name, where)
        self.reads.add(name)


def _fields(spec: Any, where: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()) -> Any:
    if not isinstance(spec, dict):
        raise BadRequestError(f"{where} must be an object")
    unknown = set(spec) - allowed
    if unknown:
        raise BadRequestError(f"{where} does not take {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(spec)
    if missing:
        raise BadRequestError(f"{where} needs {', '.join(sorted(missing))}")
    return spec


def _whole(value: Any, where: str, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise BadRequestError(f"{where} must be a whole number from {low} to {high}")


def _expressions(spec: Any, where: str) -> None:
    """``{field: expression, …}`` ($project, $addFields, $set)."""
    if not isinstance(spec, dict) or not spec:
        raise BadRequestError(f'{where} must be an object of {{"field": expression}}')
    for field, expression in spec.items():
        allowlist.check_field_name(field, where)
        allowlist.check_expression(expression, f"{where}.{field}")


def _accumulators(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise BadRequestError(f'{where} must be an object of {{"field": {{"$sum": …}}}}')
    for field, accumulator in spec.items():
        allowlist.check_field_name(field, where)
        allowlist.check_accumulator(accumulator, f"{where}.{field}")


def _match(_: _Checker, spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise BadRequestError(f"{where} must be a query object")
    allowlist.check_filter(spec, where)


def _project(_: _Checker, spec: Any, where: str) -> None:
    _expressions(spec, where)


def _unset(_: _Checker, spec: Any, where: str) -> None:
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not names:
        raise BadRequestError(f"{where} takes a field name or an array of field names")
    for name in names:
        allowlist.check_field_name(name, where)


def _group(_: _Checker, spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or "_id" not in spec:
        raise BadRequestError(f'{where} must be an object with an _id, e.g. {{"_id": "$field", "n": {{"$sum": 1}}}}')
    allowlist.check_expression(spec["_id"], f"{where}._id")
    _accumulators({k: v for k, v in spec.items() if k != "_id"}, where)


def _sort(_: _Checker, spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or not spec:
        raise BadRequestError(f'{where} must be an object of {{"field": 1 or -1}}')
    for field, direction in spec.items():
        allowlist.check_field_name(field, where)
        if type(direction) is not int or direction not in (1, -1):
            raise BadRequestError(f"{where}.{field} must be 1 or -1")


def _limit(_: _Checker, spec: Any, where: str) -> None:
    _whole(spec, where, 1, 2**31 - 1)


def _skip(_: _Checker, spec: Any, where: str) -> None:
    _whole(spec, where, 0, 2**31 - 1)


def _unwind(_: _Checker, spec: Any, where: str) -> None:
    if isinstance(spec, dict):
        _fields(spec, where, {"path", "includeArrayIndex", "preserveNullAndEmptyArrays"}, {"path"})
        if "includeArrayIndex" in spec:
            allowlist.check_field_name(spec["includeArrayIndex"], f"{where}.includeArrayIndex")
        if not isinstance(spec.get("preserveNullAndEmptyArrays", False), bool):
            raise BadRequestError(f"{where}.preserveNullAndEmptyArrays must be true or false")
        spec = spec["path"]
    if not isinstance(spec, str) or not spec.startswith("$") or spec.startswith("$$") or len(spec) < 2:
        raise BadRequestError(f'{where} takes a field path such as "$tags"')
    allowlist.check_text(spec, where)


def _count(_: _Checker, spec: Any, where: str) -> None:
    allowlist.check_field_name(spec, where)
    if "." in spec:
        raise BadRequestError(f"{where} takes a field name without dots")


def _expression(_: _Checker, spec: Any, where: str) -> None:
    allowlist.check_expression(spec, where)


def _bucket(_: _Checker, spec: Any, where: str) -> None:
    _fields(spec, where, {"groupBy", "boundaries", "default", "output"}, {"groupBy", "boundaries"})
    allowlist.check_expression(spec["groupBy"], f"{where}.groupBy")
    boundaries = spec["boundaries"]
    if not isinstance(boundaries, list) or not 2 <= len(boundaries) <= MAX_BUCKETS + 1:
        raise BadRequestError(f"{where}.boundaries must be an array of 2 to {MAX_BUCKETS + 1} values")
    allowlist.check_document({"boundaries": boundaries, "default": spec.get("default")}, where)
    _accumulators(spec.get("output", {}), f"{where}.output")


def _bucket_auto(_: _Checker, spec: Any, where: str) -> None:
    _fields(spec, where, {"groupBy", "buckets", "output", "granularity"}, {"groupBy", "buckets"})
    allowlist.check_expression(spec["groupBy"], f"{where}.groupBy")
    _whole(spec["buckets"], f"{where}.buckets", 1, MAX_BUCKETS)
    _accumulators(spec.get("output", {}), f"{where}.output")
    if "granularity" in spec and not isinstance(spec["granularity"], str):
        raise BadRequestError(f"{where}.granularity must be the name of a number series, e.g. \"R5\"")
    if "granularity" in spec:
        allowlist.check_text(spec["granularity"], f"{where}.granularity")


def _facet(checker: _Checker, spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or not spec:
        raise BadRequestError(f'{where} must be an object of {{"name": [stages]}}')
    for name, stages in spec.items():
        allowlist.check_field_name(name, where)
        checker.pipeline(stages, f"{where}.{name}")


def _replace_root(_: _Checker, spec: Any, where: str) -> None:
    _fields(spec, where, {"newRoot"}, {"newRoot"})
    allowlist.check_expression(spec["newRoot"], f"{where}.newRoot")


def _sample(_: _Checker, spec: Any, where: str) -> None:
    _fields(spec, where, {"size"}, {"size"})
    _whole(spec["size"], f"{where}.size", 1, MAX_SAMPLE_SIZE)


def _lookup(checker: _Checker, spec: Any, where: str) -> None:
    _fields(spec, where, {"from", "localField", "foreignField", "let", "pipeline", "as"}, {"from", "as"})
    checker.collection(spec["from"], f"{where}.from")
    allowlist.check_field_name(spec["as"], f"{where}.as")
    for key in ("localField", "foreignField"):
        if key in spec:
            allowlist.check_field_name(spec[key], f"{where}.{key}")
    if ("localField" in spec) != ("foreignField" in spec):
        raise BadRequestError(f"{where} takes localField and foreignField together")
    if "localField" not in spec and "pipeline" not in spec:
        raise BadRequestError(f"{where} needs localField and foreignField, or a pipeline")
    weights: dict[str, int] = {}  # what each let variable weighs where the sub-pipeline names it
    if "let" in spec:
        if not isinstance(spec["let"], dict):
            raise BadRequestError(f'{where}.let must be an object of {{"name": expression}}')
        for name, expression in spec["let"].items():
            if not isinstance(name, str) or not allowlist.USER_VARIABLE.fullmatch(name):
                raise BadRequestError(f"{where}.let names variables starting with a lowercase letter, not {name!r}")
            weights[name] = allowlist.check_expression(expression, f"{where}.let.{name}")
    if "pipeline" in spec:
        with budget.variables(weights):
            checker.pipeline(spec["pipeline"], f"{where}.pipeline")


def _graph_lookup(checker: _Checker, spec: Any, where: str) -> None:
    keys = {"from", "startWith", "connectFromField", "connectToField", "as", "maxDepth", "depthField",
            "restrictSearchWithMatch"}  # fmt: skip
    _fields(spec, where, keys, {"from", "startWith", "connectFromField", "connectToField", "as"})
    checker.collection(spec["from"], f"{where}.from")
    allowlist.check_expression(spec["startWith"], f"{where}.startWith")
    for key in ("connectFromField", "connectToField", "as", "depthField"):
        if key in spec:
            allowlist.check_field_name(spec[key], f"{where}.{key}")
    if "maxDepth" in spec:
        _whole(spec["maxDepth"], f"{where}.maxDepth", 0, 2**31 - 1)
    if "restrictSearchWithMatch" in spec:
        _match(checker, spec["restrictSearchWithMatch"], f"{where}.restrictSearchWithMatch")


def _union_with(checker: _Checker, spec: Any, where: str) -> None:
    if isinstance(spec, str):
        checker.collection(spec, where)
        return
    _fields(spec, where, {"coll", "pipeline"}, {"coll"})
    checker.collection(spec["coll"], f"{where}.coll")
    if "pipeline" in spec:
        checker.pipeline(spec["pipeline"], f"{where}.pipeline")


_STAGES: dict[str, Callable[[_Checker, Any, str], None]] = {
    "$match": _match,
    "$project": _project,
    "$addFields": _project,
    "$set": _project,
    "$unset": _unset,
    "$group": _group,
    "$sort": _sort,
    "$limit": _limit,
    "$skip": _skip,
    "$unwind": _unwind,
    "$count": _count,
    "$sortByCount": _expression,
    "$bucket": _bucket,
    "$bucketAuto": _bucket_auto,
    "$facet": _facet,
    "$replaceRoot": _replace_root,
    "$replaceWith": _expression,
    "$sample": _sample,
    "$redact": _expression,
    "$lookup": _lookup,
    "$graphLookup": _graph_lookup,
    "$unionWith": _union_with,
}
STAGES = frozenset(_STAGES)


def check_pipeline(pipeline: Any, where: str = "pipeline") -> set[str]:
    """400 unless every stage of ``pipeline`` is allowed; the collections it reads besides its source."""
    if not isinstance(pipeline, list):
        raise BadRequestError(f"{where} must be an array of stages")
    checker = _Checker()
    with budget.request_budget():  # one budget for every stage, $facet and nested $lookup
        checker.pipeline(pipeline, where)
    return checker.reads
