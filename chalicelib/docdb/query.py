"""Everything a docdb request says, parsed and checked before the driver sees it.

Names follow MongoDB's naming rules; shapes are checked here so a malformed
request is a 400 that says what is wrong, never a driver error.  Operators in
filters, projections and updates are checked against chalicelib.docdb.allowlist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bson import DBRef, Regex

from chalicelib import openapi, paging
from chalicelib.docdb import aggregation, allowlist, encoding, revision
from chalicelib.docdb.transaction import JOURNAL_DATABASE
from chalicelib.errors import BadRequestError, ForbiddenError

MAX_DB_NAME_BYTES = 63
MAX_COLLECTION_NAME_BYTES = 120
MAX_DOCUMENTS_PER_INSERT = 1000
MAX_SKIP = 2**31 - 1
MAX_SORT_KEYS = 32
# The server's own databases, and this API's (idempotency records, journal flushes).
RESERVED_DATABASES = frozenset({"admin", "config", "local", JOURNAL_DATABASE})
_DB_NAME_FORBIDDEN = set('/\\. "$*<>:|?\0')
_NOT_AN_ID = (Regex, re.Pattern, list, tuple, DBRef)
DATABASE_PARAM = openapi.path_param(
    "db",
    {"type": "string", "minLength": 1, "maxLength": MAX_DB_NAME_BYTES, "pattern": r'^[^/\\. "$*<>:|?]+$'},
    f"database name: 1 to {MAX_DB_NAME_BYTES} bytes, none of / \\ . space \" $ * < > : | ?",
)
COLLECTION_PARAM = openapi.path_param(
    "collection",
    {"type": "string", "minLength": 1, "maxLength": MAX_COLLECTION_NAME_BYTES, "pattern": r"^[^$./][^$/]*$"},
    f"collection name: 1 to {MAX_COLLECTION_NAME_BYTES} bytes, no $ or NUL, not starting with .",
)


def check_namespace(database: str, collection: str) -> None:
    """400 for a name MongoDB would refuse; 403 for the server's own namespaces."""
    if not database or len(database.encode()) > MAX_DB_NAME_BYTES or _DB_NAME_FORBIDDEN & set(database):
        raise BadRequestError(
            f"invalid database name {database!r}: 1 to {MAX_DB_NAME_BYTES} bytes, "
            'none of / \\ . space " $ * < > : | ?'
        )
    if (
        not collection
        or len(collection.encode()) > MAX_COLLECTION_NAME_BYTES
        or "$" in collection
        or "\0" in collection
        or collection.startswith(".")
    ):
        raise BadRequestError(
            f"invalid collection name {collection!r}: 1 to {MAX_COLLECTION_NAME_BYTES} bytes, "
            "no $ or NUL, not starting with ."
        )
    if database.lower() in RESERVED_DATABASES:
        raise ForbiddenError(f"the database {database!r} is reserved and not reachable through this API")
    if collection.startswith("system."):
        raise ForbiddenError("system.* collections are not reachable through this API")


def parse_json_param(raw: str | None, name: str) -> Any:
    """A query-string parameter holding Extended JSON, or None when absent."""
    if raw is None:
        return None
    try:
        return encoding.loads(raw)
    except ValueError as exc:  # encoding.loads raises nothing else for bad input
        raise BadRequestError(f"{name} is not valid Extended JSON: {str(exc)[:200]}") from None


def as_filter(value: Any, name: str = "filter") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError(f"{name} must be a JSON object")
    allowlist.check_filter(value, name)
    return value


FILTER_SCHEMA = {
    "type": "object",
    "description": (
        "a MongoDB query; allowed operators: "
        + ", ".join(sorted(allowlist.QUERY_OPERATORS))
        + "; inside $expr: "
        + ", ".join(sorted(allowlist.EXPRESSION_OPERATORS))
    ),
    "additionalProperties": True,
}


def as_projection(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequestError("projection must be a JSON object")
    for key, spec in value.items():
        if not key or key.startswith("$"):
            raise BadRequestError(f"projection field {key!r} is not a field name")
        if not isinstance(spec, (bool, int, float, dict)):
            raise BadRequestError(
                f"projection of {key!r} must be 0, 1, true, false or an object of $slice or $elemMatch"
            )
    allowlist.check_projection(value)
    return value


PROJECTION_SCHEMA = {
    "type": "object",
    "description": "field: 0 or 1, or {\"$slice\": …} / {\"$elemMatch\": …}",
    "additionalProperties": True,
}


def as_sort(value: Any) -> list[tuple[str, int]]:
    """``{"a": 1, "b": -1}`` or ``[["a", 1], ["b", -1]]`` as (field, direction) pairs."""
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise BadRequestError('sort must be an object {"field": 1|-1} or an array of [field, 1|-1] pairs')
    if len(pairs) > MAX_SORT_KEYS:
        raise BadRequestError(f"sort takes at most {MAX_SORT_KEYS} fields")
    for key, direction in pairs:
        if not isinstance(key, str) or not key or key.startswith("$") or "\0" in key:
            raise BadRequestError(f"sort field {key!r} is not a field name")
        allowlist.check_text(key, "sort")
        if direction not in (1, -1) or isinstance(direction, bool):
            raise BadRequestError(f"sort direction for {key!r} must be 1 or -1")
    if len({k for k, _ in pairs}) != len(pairs):
        raise BadRequestError("sort names a field twice")
    return [(k, int(d)) for k, d in pairs]


SORT_SCHEMA = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": "integer", "enum": [1, -1]}},
        {
            "type": "array",
            "maxItems": MAX_SORT_KEYS,
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"oneOf": [{"type": "string"}, {"type": "integer", "enum": [1, -1]}]},
            },
        },
    ]
}


def parse_skip(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_SKIP:
        raise BadRequestError(f"skip must be a whole number from 0 to {MAX_SKIP}")
    return int(raw)


def parse_flag(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequestError(f"{name} must be true or false")


def check_document(document: Any, where: str = "document") -> dict[str, Any]:
    """A document to insert: an object whose keys are field names at every depth."""
    if not isinstance(document, dict):
        raise BadRequestError(f"{where} must be a JSON object")
    if isinstance(document.get("_id"), _NOT_AN_ID):
        # A regular expression matches as a pattern wherever an _id is looked
        # up, an array is not a valid _id, and a DBRef is a reference.
        raise BadRequestError(f"{where} has an _id that is a regular expression, an array or a DBRef")
    allowlist.check_document(document, where)
    revision.check_document(document, where)
    return document


DOCUMENT_SCHEMA = {
    "type": "object",
    "description": "a document in relaxed Extended JSON ({\"$oid\": …}, {\"$date\": …})",
    "additionalProperties": True,
}


def parse_documents(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The documents of an insert body, and whether it was a single document."""
    if isinstance(body, dict):
        return [check_document(body)], True
    if isinstance(body, list):
        if not 1 <= len(body) <= MAX_DOCUMENTS_PER_INSERT:
            raise BadRequestError(f"an insert takes 1 to {MAX_DOCUMENTS_PER_INSERT} documents")
        return [check_document(d, f"document {i}") for i, d in enumerate(body)], False
    raise BadRequestError("the body must be a document or an array of documents")


INSERT_BODY = {
    "oneOf": [
        openapi.ref("Document"),
        {"type": "array", "items": openapi.ref("Document"), "minItems": 1, "maxItems": MAX_DOCUMENTS_PER_INSERT},
    ]
}


def as_update(value: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """An update document of ``$`` operators, or an update pipeline of allowed stages."""
    if isinstance(value, list):
        allowlist.check_update_pipeline(value)
        revision.check_update(value)
        return value
    if not isinstance(value, dict) or not value:
        raise BadRequestError('update must be a non-empty object of $ operators, e.g. {"$set": {...}}')
    for key in value:
        if not key.startswith("$"):
            raise BadRequestError(
                f"update key {key!r} is not an operator: use $set, $inc, … (replacing whole documents "
                "is not supported)"
            )
    allowlist.check_update(value)
    revision.check_update(value)
    return value


@dataclass
class FindSpec:
    filter: dict[str, Any]
    projection: dict[str, Any] | None
    sort: list[tuple[str, int]]
    limit: int
    skip: int
    count: bool
    cursor: str | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> FindSpec:
        return cls(
            filter=as_filter(parse_json_param(params.get("filter"), "filter")),
            projection=as_projection(parse_json_param(params.get("projection"), "projection")),
            sort=as_sort(parse_json_param(params.get("sort"), "sort")),
            limit=paging.parse_limit(params.get("limit")),
            skip=parse_skip(params.get("skip")),
            count=parse_flag(params.get("count"), "count"),
            cursor=params.get("next"),
        )


def find_parameters() -> list[dict[str, Any]]:
    """The query parameters :meth:`FindSpec.from_query` reads, for the OpenAPI document."""
    limit, next_token = openapi.page_parameters()
    return [
        FILTER_PARAM,
        PROJECTION_PARAM,
        openapi.json_query_param(
            "sort", openapi.ref("Sort"), 'order: {"a": 1, "b": -1} or [["a", 1], ["b", -1]]', '[["rating", -1]]'
        ),
        limit,
        openapi.query_param("skip", {"type": "integer", "minimum": 0, "maximum": MAX_SKIP}, "documents to skip"),
        openapi.query_param("count", {"type": "boolean", "default": False}, "add X-Total-Count"),
        next_token,
    ]


PROJECTION_PARAM = openapi.json_query_param(
    "projection", openapi.ref("Projection"), "which fields to return", '{"_id": 0, "name": 1}'
)
FILTER_PARAM = openapi.json_query_param(
    "filter", openapi.ref("Filter"), "which documents, as a query object", '{"name": "brian"}'
)
ALL_PARAM = openapi.query_param("all", {"type": "boolean", "default": False}, "allow an empty filter (every document)")


@dataclass
class UpdateSpec:
    filter: dict[str, Any]
    update: dict[str, Any] | list[dict[str, Any]]
    upsert: bool

    @classmethod
    def from_body(cls, body: Any, allow_all: bool) -> UpdateSpec:
        if not isinstance(body, dict):
            raise BadRequestError('the body must be {"filter": {...}, "update": {...}, "upsert": false}')
        unknown = set(body) - {"filter", "update", "upsert"}
        if unknown:
            raise BadRequestError(f"unknown fields in the body: {', '.join(sorted(unknown))}")
        upsert = body.get("upsert", False)
        if not isinstance(upsert, bool):
            raise BadRequestError("upsert must be true or false")
        spec = cls(as_filter(body.get("filter")), as_update(body.get("update")), upsert)
        if not spec.filter and not allow_all:
            raise BadRequestError("an empty filter would update every document; add ?all=true to mean it")
        return spec


UPDATE_BODY = {
    "type": "object",
    "properties": {
        "filter": openapi.ref("Filter"),
        "update": {
            "description": (
                "update operators ("
                + ", ".join(sorted(allowlist.UPDATE_OPERATORS))
                + ") or a pipeline of $set, $addFields and $unset stages"
            ),
            "oneOf": [
                {"type": "object", "minProperties": 1},
                {"type": "array", "minItems": 1, "items": {"type": "object"}},
            ],
        },
        "upsert": {"type": "boolean", "default": False},
    },
    "required": ["update"],
    "additionalProperties": False,
}


@dataclass
class AggregateSpec:
    pipeline: list[dict[str, Any]]
    reads: set[str]  # the other collections of the database the pipeline reads
    limit: int
    cursor: str | None = None

    @classmethod
    def from_request(cls, body: Any, params: Mapping[str, str]) -> AggregateSpec:
        """``{"pipeline": [...], "limit": n}``, and the page cursor from ``?next=``."""
        if not isinstance(body, dict) or "pipeline" not in body or set(body) - {"pipeline", "limit"}:
            raise BadRequestError('the body must be {"pipeline": [stages], "limit": 1-' f"{paging.MAX_LIMIT}" "}")
        limit = body.get("limit", paging.DEFAULT_LIMIT)
        if type(limit) is not int or not 1 <= limit <= paging.MAX_LIMIT:
            raise BadRequestError(f"limit must be a whole number from 1 to {paging.MAX_LIMIT}")
        reads = aggregation.check_pipeline(body["pipeline"])
        return cls(body["pipeline"], reads, limit, params.get("next"))


AGGREGATE_BODY = {
    "type": "object",
    "properties": {
        "pipeline": {
            "type": "array",
            "maxItems": aggregation.MAX_STAGES,
            "items": {"type": "object", "minProperties": 1, "maxProperties": 1},
            "description": "stages: " + ", ".join(sorted(aggregation.STAGES)),
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": paging.MAX_LIMIT, "default": paging.DEFAULT_LIMIT},
    },
    "required": ["pipeline"],
    "additionalProperties": False,
}


def delete_filter(body: Any, query_filter: str | None, allow_all: bool) -> dict[str, Any]:
    """The filter of a DELETE, from the body or ``?filter=``; empty only with ``all``."""
    if body is not None:
        if not isinstance(body, dict) or set(body) - {"filter"}:
            raise BadRequestError('the body must be {"filter": {...}}')
        if query_filter is not None:
            raise BadRequestError("give the filter in the body or the query, not both")
        flt = as_filter(body.get("filter"))
    else:
        flt = as_filter(parse_json_param(query_filter, "filter"))
    if not flt and not allow_all:
        raise BadRequestError("an empty filter would delete every document; add ?all=true to mean it")
    return flt


DELETE_BODY = {
    "type": "object",
    "properties": {"filter": openapi.ref("Filter")},
    "additionalProperties": False,
}
# What the parsers above accept, named for the OpenAPI document.
SCHEMAS = {
    "Document": DOCUMENT_SCHEMA,
    "Filter": FILTER_SCHEMA,
    "Projection": PROJECTION_SCHEMA,
    "Sort": SORT_SCHEMA,
    "UpdateBody": UPDATE_BODY,
    "DeleteBody": DELETE_BODY,
    "AggregateBody": AGGREGATE_BODY,
}
