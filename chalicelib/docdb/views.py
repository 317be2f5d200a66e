"""DocumentDB requests: what a request says, one service call, the response.

The routes in app.py hand over the request and a getter for the service;
this module is the only place that turns DocumentDB HTTP requests into
service calls, so a request reads top-down: app.py → here → query.py
(parsing and the allowlist) → service.py → the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib import openapi, web
from chalicelib.auth import Principal
from chalicelib.docdb import encoding, query
from chalicelib.docdb.service import CollectionService
from chalicelib.idempotency import describe, idempotent, user_scope
from chalicelib.paging import MAX_PAGE_BYTES, lambda_size

ServiceGetter = Callable[[], CollectionService]


def collection(request: Request, database: str, name: str, service: ServiceGetter) -> Response:
    """Find (GET), insert (POST, PUT), update (PATCH) or delete (DELETE) on ``database.name``.

    Names are checked before grants, and both before the service is built,
    so a refused request never touches the database.
    """
    query.check_namespace(database, name)
    Principal.from_context(request.context).require(database, name, request.method)
    return _HANDLERS[request.method](request, service(), database, name)


def aggregate(request: Request, database: str, name: str, service: ServiceGetter) -> Response:
    """Run a sandboxed pipeline on ``database.name``: a page of its results.

    Reading is enough: the caller needs a read grant on the collection and on
    every collection the pipeline joins or unions, each checked here (with
    the reserved names) before the database sees anything.
    """
    query.check_namespace(database, name)
    principal = Principal.from_context(request.context)
    principal.require(database, name, "GET")
    spec = query.AggregateSpec.from_request(web.json_body(request, encoding.loads), web.query(request))
    for other in sorted(spec.reads):
        query.check_namespace(database, other)
        principal.require(database, other, "GET")
    page = service().aggregate(database, name, spec)
    return web.page_response(request, page.body, page.next_token)


def find(request: Request, service: CollectionService, database: str, name: str) -> Response:
    page = service.find(database, name, query.FindSpec.from_query(web.query(request)))
    total = {} if page.total is None else {"X-Total-Count": str(page.total)}
    return web.page_response(request, page.body, page.next_token, total)


def insert(request: Request, service: CollectionService, database: str, name: str) -> Response:
    documents, single = query.parse_documents(web.json_body(request, encoding.loads))

    def run(session: Any) -> Response:
        stored = service.insert(database, name, documents, session)
        return web.json_response(insert_echo(stored, single), status=201)

    return idempotent(request, user_scope, lambda: service.records(database, name), run)


def insert_echo(stored: list[dict[str, Any]], single: bool, max_bytes: int = MAX_PAGE_BYTES) -> bytes:
    """What a 201 says: the stored documents, or as much of them as the response budget holds.

    A body of escaped characters grows when written back (and again in
    Lambda's response), so an echo of a body under 5 MB can pass Lambda's
    6 MB limit, and API Gateway would answer 502 after the write committed.
    When the whole echo does not fit, the 201 carries only each ``_id``
    (``{"_id": …}``, or an array of them); when even that does not fit,
    ``{"inserted_count": n}``.
    """
    echo = encoding.dumps(stored[0] if single else stored)
    if lambda_size(echo) <= max_bytes:
        return echo
    ids = [{"_id": document["_id"]} for document in stored]
    echo = encoding.dumps(ids[0] if single else ids)
    if lambda_size(echo) <= max_bytes:
        return echo
    return encoding.dumps({"inserted_count": len(stored)})


def update(request: Request, service: CollectionService, database: str, name: str) -> Response:
    allow_all = query.parse_flag(web.query(request).get("all"), "all")
    spec = query.UpdateSpec.from_body(web.json_body(request, encoding.loads), allow_all)

    def run(session: Any) -> Response:
        return web.json_response(encoding.dumps(service.update(database, name, spec, session)))

    return idempotent(request, user_scope, lambda: service.records(database, name), run)


def delete(request: Request, service: CollectionService, database: str, name: str) -> Response:
    params = web.query(request)
    body = web.json_body(request, encoding.loads, required=False)
    flt = query.delete_filter(body, params.get("filter"), query.parse_flag(params.get("all"), "all"))

    def run(session: Any) -> Response:
        return web.json_response(encoding.dumps(service.delete(database, name, flt, session)))

    return idempotent(request, user_scope, lambda: service.records(database, name), run)


_HANDLERS: dict[str, Callable[[Request, CollectionService, str, str], Response]] = {
    "GET": find,
    "POST": insert,
    "PUT": insert,
    "PATCH": update,
    "DELETE": delete,
}


def openapi_section() -> openapi.Section:
    """The collection routes, under their three scopes."""
    errors = openapi.errors
    find = {
        "summary": "Find documents",
        "description": (
            "A page of matching documents in a stable order (your sort, then _id). Operators are limited to "
            "an allowlist; $where, $function, $accumulator and server-side JavaScript are never accepted."
        ),
        "parameters": query.find_parameters(),
        "responses": {
            "200": {
                "description": "the page of documents",
                "headers": {
                    **openapi.LINK_HEADER,
                    "X-Total-Count": {
                        "description": "how many documents match (with count=true)",
                        "schema": {"type": "string"},
                    },
                },
                "content": openapi.json_content({"type": "array", "items": openapi.ref("Document")}),
            },
            **errors("400", "401", "403", "503"),
        },
    }
    insert = {
        "summary": "Insert documents",
        "description": (
            f"One document, or an array of 1 to {query.MAX_DOCUMENTS_PER_INSERT} inserted all or none. "
            "Field names may not start with $ or hold NUL."
        ),
        "requestBody": openapi.body(query.INSERT_BODY),
        "responses": {
            "201": {
                "description": (
                    "the stored document(s), _id included; when that echo would not fit in the response, "
                    'only each _id ({"_id": …} or an array of them), or {"inserted_count": n}'
                ),
                "content": openapi.json_content(
                    {"oneOf": [openapi.ref("Document"), {"type": "array", "items": openapi.ref("Document")}]}
                ),
            },
            **errors("400", "401", "403", "409", "413", "415", "503"),
        },
    }
    update = {
        "summary": "Update matching documents",
        "parameters": [query.ALL_PARAM],
        "requestBody": openapi.body(openapi.ref("UpdateBody")),
        "responses": {
            "200": {"description": "what was matched and changed",
                    "content": openapi.json_content(openapi.ref("UpdateResult"))},
            **errors("400", "401", "403", "409", "413", "415", "503"),
        },
    }  # fmt: skip
    delete = {
        "summary": "Delete matching documents",
        "description": "The filter comes in the body or as ?filter=, not both.",
        "parameters": [query.FILTER_PARAM, query.ALL_PARAM],
        "requestBody": openapi.body(openapi.ref("DeleteBody"), required=False),
        "responses": {
            "200": {"description": "how many were deleted",
                    "content": openapi.json_content(openapi.ref("DeleteResult"))},
            **errors("400", "401", "403", "413", "415", "503"),
        },
    }  # fmt: skip
    operations: dict[str, dict[str, Any]] = {
        "get": find, "post": describe(insert), "put": describe(insert), "patch": describe(update),
        "delete": describe(delete),
    }

    def scope(params: list[dict[str, Any]], tag: str) -> dict[str, Any]:
        return {
            "parameters": params,
            **{
                method: {**op, "tags": [tag], "security": [{"basicAuth": []}], "operationId": f"{method}_{tag}"}
                for method, op in operations.items()
            },
        }

    aggregate_op = {
        "summary": "Run an aggregation pipeline",
        "description": (
            "A page of the pipeline's results (a read grant is enough). Stages are limited to an allowlist; "
            "$lookup, $graphLookup and $unionWith may read only collections of the same database that your "
            "grants allow reading. POST the same body to the Link rel=\"next\" URL for the next page."
        ),
        "parameters": [openapi.page_parameters()[1]],
        "requestBody": openapi.body(openapi.ref("AggregateBody")),
        "responses": {
            "200": {
                "description": "the page of results",
                "headers": openapi.LINK_HEADER,
                "content": openapi.json_content({"type": "array", "items": openapi.ref("Document")}),
            },
            **errors("400", "401", "403", "413", "415", "503"),
        },
    }

    def aggregate_scope(params: list[dict[str, Any]], tag: str) -> dict[str, Any]:
        return {
            "parameters": params,
            "post": {**aggregate_op, "tags": [tag], "security": [{"basicAuth": []}],
                     "operationId": f"aggregate_{tag}"},
        }  # fmt: skip

    return openapi.Section(
        paths={
            "/docdb/{db}/{collection}": scope([query.DATABASE_PARAM, query.COLLECTION_PARAM], "docdb_any"),
            "/docdb/demodb/{collection}": scope([query.COLLECTION_PARAM], "docdb_demodb"),
            "/docdb/demodb/democollection": scope([], "docdb_democollection"),
            "/docdb/{db}/{collection}/_aggregate": aggregate_scope(
                [query.DATABASE_PARAM, query.COLLECTION_PARAM], "docdb_any"
            ),
            "/docdb/demodb/{collection}/_aggregate": aggregate_scope([query.COLLECTION_PARAM], "docdb_demodb"),
            "/docdb/demodb/democollection/_aggregate": aggregate_scope([], "docdb_democollection"),
        },
        schemas={
            **query.SCHEMAS,
            "UpdateResult": {
                "type": "object",
                "properties": {
                    "matched_count": {"type": "integer"},
                    "modified_count": {"type": "integer"},
                    "upserted_id": {"nullable": True},
                },
                "required": ["matched_count", "modified_count", "upserted_id"],
            },
            "DeleteResult": {
                "type": "object",
                "properties": {"deleted_count": {"type": "integer"}},
                "required": ["deleted_count"],
            },
        },
    )
