"""Which MongoDB operators a request may use, checked at every depth.

A filter, projection or update is walked before the driver sees it.  Every
``$name`` key must be on the list for where it stands: query operators in a
filter, aggregation expressions inside ``$expr`` and update-pipeline stages,
update operators at the top of an update, ``$push`` modifiers under
``$push``.  Everything else is a 400 naming the operator and its place, so
``$where``, ``$function``, ``$accumulator``, ``$out``, ``$merge`` and any
unknown ``$name`` never reach the server.

The lists hold what Amazon DocumentDB supports and what a find, update or
delete of this API needs; operators that need an index this API cannot make
(``$text``, geospatial), validate schemas (``$jsonSchema``) or read other
collections are left off.

Values arrive after ``bson.json_util`` has parsed them, so Extended JSON
wrappers (``{"$oid": …}``, ``{"$date": …}``, ``{"$regex": "…"}``) are already
BSON values, not dicts.  Of those, JavaScript (``Code``, from ``{"$code": …}``)
is refused wherever it appears, and a regular expression is capped in length
and refused when it nests repetition (``(a+)+``), the shape behind
catastrophic backtracking.  ``maxTimeMS`` bounds whatever slips past that.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from bson import Code, DBRef, Regex

from chalicelib.docdb import budget
from chalicelib.errors import BadRequestError

MAX_DEPTH = 100  # BSON nests at most 100 levels
MAX_REGEX_CHARS = 512
MAX_PIPELINE_STAGES = 20
# No "x": in extended mode white space and "#" comments hide a pattern's
# shape from the nested-repetition scan below.
REGEX_OPTIONS = frozenset("ims")
_REGEX_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL
# How many times the strings, arrays and objects one expression builds may
# name a document field ("$name", "$$ROOT"): each such name can stand for up
# to 16 MB, so {"$concat": ["$big", "$big", …]} would build gigabytes.  A let
# variable counts as what its value was built from, so doubling a string
# through nested $lookups adds up; the request as a whole has
# budget.MAX_REQUEST_BUILT_REFS.
MAX_BUILT_FIELD_REFS = 16
# Variables that never stand for document data.
_UNCOUNTED_VARIABLES = frozenset({"NOW", "REMOVE", "DESCEND", "PRUNE", "KEEP"})
_BUILDERS = frozenset({"$concat"})
# Positional update paths ("a.$.b", "a.$[].b") are the only $-parts a field path may hold.
_POSITIONAL = frozenset({"$", "$[]"})

# Where a value stands, which decides the operators it may hold.
QUERY = "query"  # a filter, $elemMatch, $pull's condition
EXPRESSION = "expression"  # $expr and update-pipeline stages
LITERAL = "literal"  # plain values: no operators at all
PUSH = "push"  # the value of a $push/$addToSet field
CURRENT_DATE = "current date"  # the value of a $currentDate field
PROJECTION = "projection"  # the value of one projected field

# Refused with their own reason; any other operator not listed below is
# refused as unknown.
BLOCKED = {
    "$where": "it runs server-side JavaScript",
    "$function": "it runs server-side JavaScript",
    "$accumulator": "it runs server-side JavaScript",
    "$out": "it writes to another collection",
    "$merge": "it writes to another collection",
    "$lookup": "it reads another collection",
    "$graphLookup": "it reads another collection",
    "$unionWith": "it reads another collection",
}

# Query operators and the context of their operand.
QUERY_OPERATORS = {
    # logical
    "$and": QUERY,
    "$or": QUERY,
    "$nor": QUERY,
    "$not": QUERY,
    # comparison
    "$eq": LITERAL,
    "$ne": LITERAL,
    "$gt": LITERAL,
    "$gte": LITERAL,
    "$lt": LITERAL,
    "$lte": LITERAL,
    "$in": LITERAL,
    "$nin": LITERAL,
    # element and array
    "$exists": LITERAL,
    "$type": LITERAL,
    "$all": LITERAL,
    "$size": LITERAL,
    "$elemMatch": QUERY,
    # evaluation
    "$mod": LITERAL,
    "$regex": LITERAL,  # its pattern is checked by _check_regex_operand
    "$options": LITERAL,  # checked by _check_regex_options
    "$expr": EXPRESSION,
    # bitwise
    "$bitsAllSet": LITERAL,
    "$bitsAllClear": LITERAL,
    "$bitsAnySet": LITERAL,
    "$bitsAnyClear": LITERAL,
}

# Aggregation expressions allowed inside $expr and update pipelines: plain
# computation on the document at hand, nothing that loops, runs code or
# looks elsewhere.
EXPRESSION_OPERATORS = frozenset(
    {
        "$and", "$or", "$not",
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp",
        "$add", "$subtract", "$multiply", "$divide", "$mod", "$abs", "$ceil", "$floor",
        "$cond", "$ifNull",
        "$in", "$size", "$arrayElemAt", "$isArray",
        "$concat", "$toLower", "$toUpper", "$strLenCP", "$substrCP", "$strcasecmp",
        "$type", "$toString", "$toInt", "$toLong", "$toDouble", "$toDecimal", "$toBool", "$toDate",
        "$year", "$month", "$dayOfMonth", "$hour", "$minute", "$second",
        "$literal",
    }
)  # fmt: skip
# System variables an expression may name ($$NOW, $$ROOT.field, …; the last
# three are $redact's verdicts).  Variables a pipeline defines itself ($lookup's
# "let") start with a lowercase letter, as MongoDB requires, and pass too: an
# undefined one is the server's 400, never a way past this list.
EXPRESSION_VARIABLES = frozenset({"NOW", "ROOT", "CURRENT", "REMOVE", "DESCEND", "PRUNE", "KEEP"})
# What $group fields and $bucket outputs accumulate with (never $accumulator,
# which runs JavaScript).
ACCUMULATORS = frozenset({"$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet", "$count"})

# Update operators and the context of each {field: value} they hold.
UPDATE_OPERATORS = {
    "$set": LITERAL,
    "$setOnInsert": LITERAL,
    "$unset": LITERAL,
    "$inc": LITERAL,
    "$mul": LITERAL,
    "$min": LITERAL,
    "$max": LITERAL,
    "$rename": LITERAL,
    "$currentDate": CURRENT_DATE,
    "$addToSet": PUSH,
    "$push": PUSH,
    "$pop": LITERAL,
    "$pull": QUERY,
    "$pullAll": LITERAL,
    "$bit": LITERAL,
}
PUSH_MODIFIERS = {"$each": LITERAL, "$position": LITERAL, "$slice": LITERAL, "$sort": LITERAL}
CURRENT_DATE_OPERATORS = {"$type": LITERAL}
PROJECTION_OPERATORS = {"$slice": LITERAL, "$elemMatch": QUERY}
# Stages of an update pipeline ([{"$set": {...}}, {"$unset": [...]}]).
PIPELINE_STAGES = frozenset({"$set", "$addFields", "$unset"})

_ALLOWED = {
    QUERY: QUERY_OPERATORS,
    EXPRESSION: dict.fromkeys(EXPRESSION_OPERATORS, EXPRESSION) | {"$literal": LITERAL},
    LITERAL: {},
    PUSH: PUSH_MODIFIERS,
    CURRENT_DATE: CURRENT_DATE_OPERATORS,
    PROJECTION: PROJECTION_OPERATORS,
}
# The context of a value under a plain field name.
_UNDER_FIELD = {QUERY: QUERY, EXPRESSION: EXPRESSION, PROJECTION: LITERAL}
_WHAT = {
    QUERY: "a query operator",
    EXPRESSION: "an expression operator allowed in $expr or an update pipeline",
    LITERAL: "allowed in a plain value",
    PUSH: "a $push/$addToSet modifier",
    CURRENT_DATE: "a $currentDate option",
    PROJECTION: "a projection operator",
}


class _Path:
    """Where a value stands (``filter.$or[1].name``), rendered only for an error message.

    Building the string at every step would copy a long key once per element
    under it: a 2.5 M-character key over a 1.2 M-element array made the walk
    quadratic.  Each part is cut to 64 characters when rendered.
    """

    __slots__ = ("parent", "part")

    def __init__(self, parent: _Path | str, part: str) -> None:
        self.parent = parent
        self.part = part

    def __str__(self) -> str:
        parts: list[str] = []
        node: _Path | str = self
        while isinstance(node, _Path):
            parts.append(node.part if len(node.part) <= 64 else node.part[:60] + "…")
            node = node.parent
        parts.append(node)
        return "".join(reversed(parts))


def _field(parent: _Path | str, key: str) -> _Path:
    return _Path(parent, "." + key)


def _item(parent: _Path | str, index: int) -> _Path:
    return _Path(parent, f"[{index}]")


Where = _Path | str


class OperatorNotAllowedError(BadRequestError):
    """A ``$name`` that is not on the list for where it stands."""

    def __init__(self, operator: str, where: Where, reason: str) -> None:
        super().__init__(f"{where} uses {operator}, which is not accepted: {reason}")
        self.operator = operator


USER_VARIABLE = re.compile(r"[a-z][A-Za-z0-9_]*")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _budgeted(check: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a check within the request's budget (its own, outside a request)."""

    @functools.wraps(check)
    def within_budget(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with budget.request_budget():
            return check(*args, **kwargs)

    return within_budget


@_budgeted
def check_filter(value: Any, name: str = "filter") -> None:
    """400 unless every operator in the filter ``value`` is allowed."""
    _walk(value, QUERY, name, 0)


@_budgeted
def check_expression(value: Any, where: str) -> int:
    """An aggregation expression: the operators allowed in ``$expr`` and update pipelines.

    Returns its weight (see :func:`_check_built`), which a ``let`` variable
    bound to it carries.
    """
    _walk(value, EXPRESSION, where, 0)
    return _check_built(value, where)


@_budgeted
def check_accumulator(value: Any, where: str) -> None:
    """``{"$sum": expression}``: one accumulator of :data:`ACCUMULATORS` over an expression."""
    if not isinstance(value, dict) or len(value) != 1:
        raise BadRequestError(f'{where} must be one accumulator, e.g. {{"$sum": "$field"}}')
    [(operator, argument)] = value.items()
    if operator not in ACCUMULATORS:
        reason = BLOCKED.get(operator) or f"the accumulators allowed are {', '.join(sorted(ACCUMULATORS))}"
        raise OperatorNotAllowedError(str(operator), where, reason)
    _walk(argument, EXPRESSION, f"{where}.{operator}", 1)
    _check_built(argument, f"{where}.{operator}")


def check_field_name(name: Any, where: str) -> None:
    """A plain field name (or dotted path): a string, not an operator, no NUL."""
    if not isinstance(name, str) or not name or name.startswith("$"):
        raise BadRequestError(f"{where} takes field names, not {name!r}")
    _check_key(name, where)


@_budgeted
def check_document(value: dict[str, Any], where: str) -> None:
    """A document to store: plain values at every depth, no operators, no JavaScript."""
    _walk(value, LITERAL, where, 0)


@_budgeted
def check_projection(value: dict[str, Any]) -> None:
    for key, spec in value.items():
        _check_key(key, "projection")
        _walk(spec, PROJECTION, f"projection.{key}", 1)


@_budgeted
def check_update(value: dict[str, Any]) -> None:
    """An update document: ``{"$set": {field: value}, …}``.

    A dotted field path nests its value one level per part, so the parts
    count against the depth limit; a ``$rename`` target is a path too.
    """
    for operator, fields in value.items():
        where = f"update.{operator}"
        context = _operator_context(operator, UPDATE_OPERATORS, "an update operator", "update")
        if not isinstance(fields, dict):
            _walk(fields, LITERAL, where, 1)  # an operator in it is named before its shape is
            raise BadRequestError(f'{where} must be an object of {{"field": value}}')
        for field, item in fields.items():
            _check_key(field, where)
            if field.startswith("$"):
                raise OperatorNotAllowedError(field, where, f"{where} takes field names, not operators")
            depth = _check_path(field, where, positional=operator != "$rename")
            if operator == "$rename":
                if not isinstance(item, str) or not item:
                    raise BadRequestError(f"{where}.{field[:64]} must be the new field name")
                _check_key(item, where)
                _check_path(item, where, positional=False)
                continue
            _walk(item, context, _field(where, field), max(2, depth))


@_budgeted
def check_update_pipeline(stages: list[Any]) -> None:
    """An update pipeline: ``[{"$set": {...}}, {"$unset": [...]}]``."""
    if not 1 <= len(stages) <= MAX_PIPELINE_STAGES:
        raise BadRequestError(f"an update pipeline takes 1 to {MAX_PIPELINE_STAGES} stages")
    for index, stage in enumerate(stages):
        where = f"update[{index}]"
        for name in stage if isinstance(stage, dict) else ():
            if name not in PIPELINE_STAGES:
                allowed = ", ".join(sorted(PIPELINE_STAGES))
                reason = BLOCKED.get(name) or f"an update pipeline takes only {allowed}"
                raise OperatorNotAllowedError(str(name), where, reason)
        if not isinstance(stage, dict) or len(stage) != 1:
            raise BadRequestError(f'{where} must be one stage, e.g. {{"$set": {{...}}}}')
        [(name, spec)] = stage.items()
        if name == "$unset":
            _walk(spec, LITERAL, f"{where}.$unset", 2)  # an operator in it is named before its shape is
            names = [spec] if isinstance(spec, str) else spec
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise BadRequestError(f"{where}.$unset takes a field name or an array of field names")
            for field in names:
                _check_key(field, where)
                _check_path(field, where, positional=False)
            continue
        if not isinstance(spec, dict):
            _walk(spec, EXPRESSION, f"{where}.{name}", 2)
            raise BadRequestError(f'{where}.{name} must be an object of {{"field": expression}}')
        for field, expression in spec.items():
            _check_key(field, f"{where}.{name}")
            if field.startswith("$"):
                raise OperatorNotAllowedError(field, f"{where}.{name}", "a stage takes field names, not operators")
            depth = _check_path(field, f"{where}.{name}", positional=False)
            at = _field(f"{where}.{name}", field)
            _walk(expression, EXPRESSION, at, max(3, depth + 1))
            _check_built(expression, at)


def _check_path(path: str, where: Where, positional: bool) -> int:
    """The depth a dotted field path reaches; 400 past the limit or for a $-part.

    ``{"$set": {"a.$function": 1}}`` or ``{"$rename": {"n": "$where"}}`` would
    store a ``$`` field name, which no document here may hold.
    """
    parts = path.split(".")
    if len(parts) > MAX_DEPTH:
        raise BadRequestError(f"{where} names a field path of {len(parts)} parts; the limit is {MAX_DEPTH}")
    for part in parts:
        if part.startswith("$") and not (positional and part in _POSITIONAL):
            raise OperatorNotAllowedError(part[:64], where, "field names may not start with $")
    return len(parts)


def _check_built(expression: Any, where: Where) -> int:
    """400 when an expression builds strings, arrays or objects from more than
    :data:`MAX_BUILT_FIELD_REFS` field references, or takes the request past
    :data:`budget.MAX_REQUEST_BUILT_REFS`; else the expression's weight.

    The expression is a tree written out in the request (no loops), and a
    variable weighs what its ``let`` value was built from, so this count
    bounds what evaluating it can build per document.  The weight (every
    reference in the expression, at least 1) bounds how many 16 MB units
    its value can hold.
    """
    spent = budget.current()
    refs = named = 0
    # (value, inside something being built, is an operator's argument list)
    stack: list[tuple[Any, bool, bool]] = [(expression, False, False)]
    while stack:
        value, building, arguments = stack.pop()
        if isinstance(value, str):
            if value.startswith("$"):
                weight = _weight(value, spent.variables)
                named += weight
                refs += weight if building else 0
        elif isinstance(value, dict):
            for key, item in value.items():
                if key == "$literal":
                    continue  # not evaluated
                if key.startswith("$"):
                    stack.append((item, building or key in _BUILDERS, True))
                else:
                    stack.append((item, True, False))  # an object being built
        elif isinstance(value, (list, tuple)):
            for item in value:
                stack.append((item, building or not arguments, False))
    if refs > MAX_BUILT_FIELD_REFS:
        raise BadRequestError(
            f"{where} builds a string, array or object from {refs} field references (a let variable "
            f"counts as the references its value was built from); the limit is {MAX_BUILT_FIELD_REFS}, "
            "as each can hold up to 16 MB: name fewer fields, or build from fewer variables"
        )
    spent.built += refs
    if spent.built > budget.MAX_REQUEST_BUILT_REFS:
        raise BadRequestError(
            f"{where} brings what this request builds (strings, arrays, objects) to {spent.built} field "
            f"references, a let variable counting as the references its value was built from; the limit "
            f"is {budget.MAX_REQUEST_BUILT_REFS} per request, its stages, $facets and nested $lookups "
            "together: build less, e.g. do not double a value through nested $lookup let variables"
        )
    return max(1, named)


def _weight(reference: str, variables: dict[str, int]) -> int:
    """How many 16 MB units ``"$field"``, ``"$$ROOT"`` or ``"$$var.path"`` stands for."""
    if not reference.startswith("$$"):
        return 1
    name = reference[2:].split(".", 1)[0]
    if name in _UNCOUNTED_VARIABLES:
        return 0
    return variables.get(name, 1)  # $$ROOT, $$CURRENT: one document


def nested_quantifier(pattern: str) -> bool:
    """Whether ``pattern`` repeats a group that itself repeats, e.g. ``(a+)+``,
    or repeats an alternation without bound, e.g. ``(a|aa)+``.

    Such patterns backtrack exponentially on a near miss.  A small scanner
    rather than a full parser: it knows escapes, character classes, groups
    and quantifiers, which is all the shape takes.  (A bounded repeat of an
    alternation, ``(a|b){2}``, is harmless and passes.)
    """
    stack = [False]  # per open group: does it hold a repetition?
    alternations = [False]  # per open group: does it hold a "|"?
    last_group_repeats = False  # the atom just before: a group that repeats
    last_group_alternates = False  # the atom just before: a group with a "|"
    after_quantifier = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        repeat, width = _quantifier_at(pattern, i)
        if width:
            if not after_quantifier:  # a second quantifier only makes the first lazy or possessive
                if repeat and last_group_repeats:
                    return True
                if last_group_alternates and _unbounded(pattern[i : i + width]):
                    return True
                stack[-1] = stack[-1] or repeat
            after_quantifier, last_group_repeats, last_group_alternates = True, False, False
            i += width
            continue
        after_quantifier = False
        last_group_repeats = last_group_alternates = False
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _skip_class(pattern, i)
            continue
        if char == "(":
            stack.append(False)
            alternations.append(False)
            if pattern.startswith("?", i + 1):
                i += 1  # (?:…), (?=…), (?i): the ? is not a quantifier
        elif char == "|":
            alternations[-1] = True
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()
            stack[-1] = stack[-1] or inner
            last_group_repeats = inner
            last_group_alternates = alternations.pop()
            alternations[-1] = alternations[-1] or last_group_alternates
        i += 1
    return False


_INLINE_OPTION = re.compile(r"\(\?([\^a-zA-Z-]*)[:)]")


def _inline_option(pattern: str) -> bool:
    """Whether ``pattern`` opens an inline option group such as ``(?x)`` or
    ``(?i-s:…)``, or a ``(?#…)`` comment: outside the scan above, either can
    make the engine see a different pattern from the one that was checked."""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _skip_class(pattern, i)
            continue
        if char == "(" and pattern.startswith("?", i + 1):
            if pattern.startswith("#", i + 2):
                return True
            option = _INLINE_OPTION.match(pattern, i)
            if option and "x" in option.group(1):
                return True
        i += 1
    return False


def _unbounded(quantifier: str) -> bool:
    return quantifier[0] in "*+" or (quantifier.startswith("{") and quantifier.rstrip("}").endswith(","))


def _quantifier_at(pattern: str, i: int) -> tuple[bool, int]:
    """(repeats more than once, length) of a quantifier at ``i``, or (False, 0)."""
    char = pattern[i]
    if char in "*+":
        return True, 1
    if char == "?":
        return False, 1
    if char == "{":
        match = re.match(r"\{(\d*)(,?)(\d*)\}", pattern[i:])
        if match and (match.group(1) or match.group(3)):
            low, comma, high = match.groups()
            repeats = bool(comma and not high) or int(high or low or 0) > 1
            return repeats, match.end()
    return False, 0


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i``."""
    i += 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _walk(value: Any, context: str, where: Where, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequestError(f"{where} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Code):
        raise OperatorNotAllowedError("$code", where, "JavaScript is never run by this API")
    if isinstance(value, (Regex, re.Pattern)):
        _check_regex_value(value, where)
    elif isinstance(value, DBRef):
        _check_dbref(value, where, depth)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_key(key, where)
            if key.startswith("$"):
                child = _operator_context(key, _ALLOWED[context], _WHAT[context], where)
                if context == QUERY and key == "$regex":
                    _check_regex_operand(item, _field(where, "$regex"))
                elif context == QUERY and key == "$options":
                    _check_regex_options(item, _field(where, "$options"))
                elif context == QUERY and key == "$expr":
                    _check_built(item, _field(where, "$expr"))
            else:
                child = _UNDER_FIELD.get(context, LITERAL)
            _walk(item, child, _field(where, key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, context, _item(where, index), depth + 1)
    elif isinstance(value, str):
        check_text(value, where)
        if context == EXPRESSION and value.startswith("$$"):
            _check_variable(value, where)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        check_integer(value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise BadRequestError(f"{where} holds NaN or an infinity, which this API does not store")


def _check_dbref(value: DBRef, where: Where, depth: int) -> None:
    """A DBRef: names are text, the ``$id`` is walked like any value, and no other fields.

    The parser makes a DBRef only of the exact ``{"$ref", "$id"[, "$db"]}``
    shape; extra fields would otherwise reach the database unwalked.
    """
    extra = sorted(set(value.as_doc()) - {"$ref", "$id", "$db"})
    if extra:
        raise BadRequestError(f"{where} is a DBRef with {', '.join(extra)}: a DBRef takes only $ref, $id and $db")
    check_text(value.collection, where)
    if value.database is not None:
        check_text(value.database, where)
    _walk(value.id, LITERAL, _field(where, "$id"), depth + 1)


def check_integer(value: int, where: Where) -> None:
    """400 for an integer BSON cannot hold (it has 64 bits at most)."""
    if not -(2**63) <= value < 2**63:
        raise BadRequestError(f"{where} holds an integer outside the 64-bit range; use $numberDecimal")


def _check_variable(value: str, where: Where) -> None:
    variable = value[2:].split(".", 1)[0]
    if variable not in EXPRESSION_VARIABLES and not USER_VARIABLE.fullmatch(variable):
        allowed = ", ".join(f"$${v}" for v in sorted(EXPRESSION_VARIABLES))
        raise OperatorNotAllowedError(f"$${variable}", where, f"the variables allowed are {allowed}")


def _operator_context(operator: Any, allowed: dict[str, str], what: str, where: Where) -> str:
    if operator in BLOCKED:
        raise OperatorNotAllowedError(operator, where, f"{BLOCKED[operator]}, which this API never allows")
    if operator not in allowed:
        hint = f"use one of {', '.join(sorted(allowed))}" if allowed else "no operators are allowed here"
        raise OperatorNotAllowedError(str(operator), where, f"it is not {what}; {hint}")
    return allowed[operator]


def _check_key(key: Any, where: Where) -> None:
    if not isinstance(key, str) or "\0" in key:
        raise BadRequestError(f"{where} has a key {key!r}: keys are strings without NUL")
    check_text(key, where)


def check_text(text: str, where: Where) -> None:
    """400 for a string UTF-8 cannot hold (a lone surrogate from a \\ud800 escape)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestError(f"{where} holds text that is not valid Unicode (an unpaired surrogate)") from None


def _check_regex_operand(pattern: Any, where: Where) -> None:
    if isinstance(pattern, (Regex, re.Pattern)):
        return  # checked as a value
    if not isinstance(pattern, str):
        raise BadRequestError(f"{where} takes a pattern string")
    _check_pattern(pattern, where)


def _check_regex_options(options: Any, where: Where) -> None:
    if not isinstance(options, str) or not set(options) <= REGEX_OPTIONS:
        raise BadRequestError(f"{where} takes a string of the flags {''.join(sorted(REGEX_OPTIONS))}")


def _check_regex_value(value: Any, where: Where) -> None:
    """A regular expression value ({"$regularExpression": …}): its pattern, and only the flags i, m, s."""
    flags = value.flags if isinstance(value.flags, int) else -1
    if flags & ~_REGEX_FLAGS & ~re.UNICODE:
        raise BadRequestError(f"{where} has a regular expression with flags other than i, m and s")
    pattern = value.pattern
    if isinstance(pattern, str):
        check_text(pattern, where)
    _check_pattern(pattern, where)


def _check_pattern(pattern: Any, where: Where) -> None:
    if isinstance(pattern, bytes):
        pattern = pattern.decode("utf-8", "replace")
    check_text(pattern, where)
    spent = budget.current()
    spent.regex_chars += len(pattern)
    if spent.regex_chars > budget.MAX_REQUEST_REGEX_CHARS:
        raise BadRequestError(
            f"{where} brings the regular expressions of this request to {spent.regex_chars} characters; "
            f"the limit is {budget.MAX_REQUEST_REGEX_CHARS} in all: send fewer or shorter patterns"
        )
    if _inline_option(pattern):
        raise BadRequestError(
            f"{where} turns on extended mode or holds a comment ((?x), (?#…)); "
            "write the pattern without them (the flags allowed are i, m and s)"
        )
    if len(pattern) > MAX_REGEX_CHARS:
        raise BadRequestError(
            f"{where} has a regular expression of {len(pattern)} characters; the limit is {MAX_REGEX_CHARS}"
        )
    if nested_quantifier(pattern):
        raise BadRequestError(
            f"{where} repeats a group that itself repeats, or repeats an alternation without bound "
            f"({pattern[:60]!r}), which can take exponential time; rewrite it without nested quantifiers"
        )
