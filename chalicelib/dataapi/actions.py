"""Each Data API action: its fields, their checks, one service call, the documented result.

The checks are the REST routes' own (chalicelib.docdb.query and its operator
allowlist), called on the fields of the body instead of the query string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bson import Int64

from chalicelib.dataapi import formats
from chalicelib.dataapi.formats import MissingParameterError
from chalicelib.docdb import aggregation, encoding, query
from chalicelib.errors import BadRequestError

if TYPE_CHECKING:
    from chalicelib.docdb.service import CollectionService

NAMESPACE_FIELDS = ("dataSource", "database", "collection")
DEFAULT_FIND_LIMIT = 1000  # the contract's default
MAX_FIND_LIMIT = 50_000  # the contract's ceiling; the response budget usually binds first
AGGREGATE_LIMIT = 1000  # what one aggregate answer may hold (the REST aggregation's page ceiling)

# (service, database, collection, body, media type[, session]): the write actions take the
# session of a keyed write (chalicelib/idempotency.py) and pass it to the service.
Run = Callable[..., bytes]


@dataclass(frozen=True)
class Action:
    run: Run
    write: bool
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # The collections of the same database the action reads besides its own.
    reads: Callable[[dict[str, Any]], set[str]] = lambda _body: set()

    def check_fields(self, body: dict[str, Any]) -> None:
        unknown = set(body) - {*NAMESPACE_FIELDS, *self.required, *self.optional}
        if unknown:
            raise BadRequestError(f"unknown fields in the body: {', '.join(sorted(map(str, unknown)))[:300]}")
        for name in self.required:
            if name not in body:
                raise MissingParameterError(f"the body must have {name!r}")


def namespace(body: dict[str, Any]) -> tuple[str, str]:
    """``(database, collection)`` of a body; ``dataSource`` must be there but names nothing here."""
    for name in NAMESPACE_FIELDS:
        if name not in body:
            raise MissingParameterError(f"the body must have {name!r}")
        if not isinstance(body[name], str) or not body[name]:
            raise BadRequestError(f"{name} must be a non-empty string")
    query.check_namespace(body["database"], body["collection"])
    return body["database"], body["collection"]


def _whole(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if type(value) not in (int, Int64) or not low <= value <= high:
        raise BadRequestError(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _required_filter(body: dict[str, Any]) -> dict[str, Any]:
    """The filter an action must have: an object (``{}`` matches every document)."""
    if not isinstance(body["filter"], dict):
        raise BadRequestError("filter must be a JSON object")
    return query.as_filter(body["filter"])


def _upsert(body: dict[str, Any]) -> bool:
    upsert = body.get("upsert", False)
    if not isinstance(upsert, bool):
        raise BadRequestError("upsert must be true or false")
    return upsert


def _find_one(service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str) -> bytes:
    flt = query.as_filter(body.get("filter"))
    projection = query.as_projection(body.get("projection"))
    document = formats.decoded(service.find_one(db, coll, flt, projection))
    return formats.within_budget(formats.dumps({"document": document}, media))


def _find(service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str) -> bytes:
    from chalicelib.docdb.query import FindSpec

    spec = FindSpec(
        filter=query.as_filter(body.get("filter")),
        projection=query.as_projection(body.get("projection")),
        sort=query.as_sort(body.get("sort")),
        limit=_whole(body, "limit", DEFAULT_FIND_LIMIT, 1, MAX_FIND_LIMIT),
        skip=_whole(body, "skip", 0, 0, query.MAX_SKIP),
        count=False,
    )

    def consume(documents: Iterator[Any]) -> bytes:
        return formats.documents_body(documents, media)

    return service.find_each(db, coll, spec, consume)


def _insert_one(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    [stored] = service.insert(db, coll, [query.check_document(body["document"])], session)
    return formats.dumps({"insertedId": stored["_id"]}, media)


def _insert_many(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    if not isinstance(body["documents"], list):
        raise BadRequestError("documents must be an array of documents")
    documents, _ = query.parse_documents(body["documents"])
    stored = service.insert(db, coll, documents, session)
    return formats.dumps({"insertedIds": [d["_id"] for d in stored]}, media)


def _update_spec(body: dict[str, Any]) -> query.UpdateSpec:
    # An explicit filter is required, so {} is deliberate: no ?all=true guard here.
    if not isinstance(body["filter"], dict):
        raise BadRequestError("filter must be a JSON object")
    fields = {k: body[k] for k in ("filter", "update", "upsert") if k in body}
    return query.UpdateSpec.from_body(fields, allow_all=True)


def _updated(result: dict[str, Any], media: str) -> bytes:
    answer = {"matchedCount": result["matched_count"], "modifiedCount": result["modified_count"]}
    if result["upserted_id"] is not None:
        answer["upsertedId"] = result["upserted_id"]
    return formats.dumps(answer, media)


def _update_one(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    return _updated(service.update_one(db, coll, _update_spec(body), session), media)


def _update_many(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    return _updated(service.update(db, coll, _update_spec(body), session), media)


def _replace_one(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    flt = _required_filter(body)
    replacement = query.check_document(body["replacement"], "replacement")
    return _updated(service.replace_one(db, coll, flt, replacement, _upsert(body), session), media)


def _delete_one(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    result = service.delete_one(db, coll, _required_filter(body), session)
    return formats.dumps({"deletedCount": result["deleted_count"]}, media)


def _delete_many(
    service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str, session: Any = None
) -> bytes:
    result = service.delete(db, coll, _required_filter(body), session)
    return formats.dumps({"deletedCount": result["deleted_count"]}, media)


def _aggregate(service: CollectionService, db: str, coll: str, body: dict[str, Any], media: str) -> bytes:
    spec = query.AggregateSpec.from_request({"pipeline": body["pipeline"], "limit": AGGREGATE_LIMIT}, {})
    page = service.aggregate(db, coll, spec)
    if page.next_token:
        raise BadRequestError(
            f"the pipeline returns more than {AGGREGATE_LIMIT} documents or more than fits in one response; "
            "add a $match or $limit stage"
        )
    return formats.documents_body(encoding.loads(bytes(page.body)), media)


def _aggregate_reads(body: dict[str, Any]) -> set[str]:
    """The other collections an aggregate reads (the view checks them against the caller's grants)."""
    return aggregation.check_pipeline(body["pipeline"])


ACTIONS: dict[str, Action] = {
    "findOne": Action(_find_one, write=False, required=(), optional=("filter", "projection")),
    "find": Action(_find, write=False, required=(), optional=("filter", "projection", "sort", "limit", "skip")),
    "insertOne": Action(_insert_one, write=True, required=("document",)),
    "insertMany": Action(_insert_many, write=True, required=("documents",)),
    "updateOne": Action(_update_one, write=True, required=("filter", "update"), optional=("upsert",)),
    "updateMany": Action(_update_many, write=True, required=("filter", "update"), optional=("upsert",)),
    "replaceOne": Action(_replace_one, write=True, required=("filter", "replacement"), optional=("upsert",)),
    "deleteOne": Action(_delete_one, write=True, required=("filter",)),
    "deleteMany": Action(_delete_many, write=True, required=("filter",)),
    "aggregate": Action(_aggregate, write=False, required=("pipeline",), reads=_aggregate_reads),
}
