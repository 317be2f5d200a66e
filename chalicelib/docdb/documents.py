"""One document as a resource: ``/docdb/{db}/{collection}/{id}``.

GET and HEAD read it (``If-None-Match`` → 304), PUT replaces or creates it,
PATCH applies update operators to it, DELETE removes it; every write honours
``If-Match`` and ``If-None-Match`` atomically (see documents_service).  Names,
grants and the operator allowlist are the collection routes' own.

The ``{id}`` segment is an ObjectId when it is 24 hex digits, otherwise a
string; ``?id_type=objectid|string|int`` forces the type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib import etags, openapi, web
from chalicelib.auth import Principal
from chalicelib.docdb import allowlist, encoding, query
from chalicelib.docdb.documents_service import Tagged, check_response_size
from chalicelib.docdb.service import CollectionService
from chalicelib.errors import BadRequestError
from chalicelib.idempotency import describe, idempotent, user_scope

ServiceGetter = Callable[[], CollectionService]
ID_TYPES = ("objectid", "string", "int")
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_INT = re.compile(r"-?[0-9]{1,19}")


def parse_id(raw: str, id_type: str | None) -> Any:
    """The ``_id`` a path segment names: 400 when it does not parse as the forced type."""
    from bson import ObjectId

    allowlist.check_text(raw, "the id")
    if id_type is None:
        return ObjectId(raw) if _OBJECT_ID.fullmatch(raw) else raw
    if id_type == "string":
        return raw
    if id_type == "objectid":
        if not _OBJECT_ID.fullmatch(raw):
            raise BadRequestError("with id_type=objectid the id must be 24 hexadecimal digits")
        return ObjectId(raw)
    if id_type == "int":
        if not _INT.fullmatch(raw) or not -(2**63) <= int(raw) < 2**63:
            raise BadRequestError("with id_type=int the id must be a whole number that fits in 64 bits")
        return int(raw)
    raise BadRequestError(f"id_type must be one of {', '.join(ID_TYPES)}")


def document(request: Request, database: str, name: str, raw_id: str, service: ServiceGetter) -> Response:
    """GET, HEAD, PUT, PATCH or DELETE on the document ``raw_id`` of ``database.name``.

    Names, grants, the id and the condition headers are all checked before
    the service is built, so a refused request never touches the database.
    """
    query.check_namespace(database, name)
    Principal.from_context(request.context).require(database, name, request.method)
    doc_id = parse_id(raw_id, web.query(request).get("id_type"))
    conditions = etags.Preconditions.from_headers(request.headers)
    try:
        return _HANDLERS[request.method](request, service(), (database, name, doc_id), conditions)
    except etags.NotModified as hit:
        return respond(304, hit.etag)


def respond(
    status: int, etag: str | None = None, tagged: Tagged | None = None, headers: dict[str, str] | None = None
) -> Response:
    """Every response of these routes: the ETag when there is one, the document when there is a body."""
    fields = {**({"ETag": etag} if etag else {}), **(headers or {})}
    if tagged is None or tagged.document is None:
        return Response(body="", status_code=status, headers=dict(fields))
    body = encoding.dumps(tagged.document)
    check_response_size(body)
    return web.json_response(body, status=status, headers=fields)


Target = tuple[str, str, Any]


def read(request: Request, service: CollectionService, target: Target, conditions: etags.Preconditions) -> Response:
    projection = query.as_projection(query.parse_json_param(web.query(request).get("projection"), "projection"))
    found = service.get_document(*target, projection, conditions)
    if request.method == "HEAD":
        return respond(200, etags.quote(found.etag), headers=web.JSON_HEADERS)
    return respond(200, etags.quote(found.etag), found)


def replace(request: Request, service: CollectionService, target: Target, conditions: etags.Preconditions) -> Response:
    body = query.check_document(web.json_body(request, encoding.loads))
    if "_id" in body and encoding.dumps(body["_id"]) != encoding.dumps(target[2]):
        raise BadRequestError("the body's _id differs from the id in the path; leave it out or make them equal")

    def run(session: Any) -> Response:
        written = service.replace_document(*target, body, conditions, session)
        if written.created:
            location = web.request_path(request)
            id_type = web.query(request).get("id_type")
            if id_type:
                location += f"?id_type={id_type}"
            return respond(201, etags.quote(written.etag), written, {"Location": location})
        return respond(200, etags.quote(written.etag), written)

    return _idempotent(request, service, target, run)


def update(request: Request, service: CollectionService, target: Target, conditions: etags.Preconditions) -> Response:
    change = query.as_update(web.json_body(request, encoding.loads))

    def run(session: Any) -> Response:
        written = service.update_document(*target, change, conditions, session)
        return respond(200, etags.quote(written.etag), written)

    return _idempotent(request, service, target, run)


def delete(request: Request, service: CollectionService, target: Target, conditions: etags.Preconditions) -> Response:

    def run(session: Any) -> Response:
        service.delete_document(*target, conditions, session)
        return respond(204)

    return _idempotent(request, service, target, run)


def _idempotent(
    request: Request, service: CollectionService, target: Target, run: Callable[[Any], Response]
) -> Response:
    """The write once per Idempotency-Key (chalicelib/idempotency.py): its record commits with it."""
    database, name, _ = target
    return idempotent(request, user_scope, lambda: service.records(database, name), run)


_HANDLERS: dict[str, Callable[[Request, CollectionService, Target, etags.Preconditions], Response]] = {
    "GET": read,
    "HEAD": read,
    "PUT": replace,
    "PATCH": update,
    "DELETE": delete,
}


# --- the OpenAPI description, beside the parsing it describes ------------------------------

ID_PARAM = openapi.path_param(
    "id",
    {"type": "string", "minLength": 1},
    "the document's _id: 24 hex digits are an ObjectId, anything else a string (see id_type)",
)
ID_TYPE_PARAM = openapi.query_param(
    "id_type", {"type": "string", "enum": list(ID_TYPES)}, "force the type of the id; 400 when it does not parse as it"
)
LOCATION_HEADER = {"Location": {"description": "this document's URL", "schema": {"type": "string"}}}
PATCH_BODY = {
    "description": (
        "update operators (" + ", ".join(sorted(allowlist.UPDATE_OPERATORS))
        + ") or a pipeline of $set, $addFields and $unset stages; _rev is reserved"
    ),
    "oneOf": [
        {"type": "object", "minProperties": 1},
        {"type": "array", "minItems": 1, "items": {"type": "object"}},
    ],
}  # fmt: skip


def openapi_section() -> openapi.Section:
    """The document routes, under the collection routes' three scopes."""
    errors = openapi.errors
    document = openapi.json_content(openapi.ref("Document"))
    conditions = [etags.IF_MATCH, etags.IF_NONE_MATCH]
    failed = {"412": etags.precondition_failed()}
    read = {
        "summary": "One document by _id, with its ETag",
        "parameters": [*conditions, query.PROJECTION_PARAM],
        "responses": {
            "200": {"description": "the document", "headers": etags.ETAG_HEADER, "content": document},
            "304": etags.NOT_MODIFIED,
            **failed,
            **errors("400", "401", "403", "404", "503"),
        },
    }
    head = {
        "summary": "The ETag of one document, without the body",
        "parameters": conditions,
        "responses": {
            "200": {"description": "the document exists; no body", "headers": etags.ETAG_HEADER},
            "304": etags.NOT_MODIFIED,
            **failed,
            **errors("400", "401", "403", "404", "503"),
        },
    }
    replace = {
        "summary": "Replace or create one document",
        "description": (
            "The whole document; _id comes from the path (a body _id must equal it). If-Match replaces only "
            "that version (412 otherwise, also when the document is absent); If-None-Match: * only creates."
        ),
        "parameters": conditions,
        "requestBody": openapi.body(openapi.ref("Document")),
        "responses": {
            "200": {"description": "replaced: the stored document", "headers": etags.ETAG_HEADER, "content": document},
            "201": {
                "description": "created: the stored document",
                "headers": {**etags.ETAG_HEADER, **LOCATION_HEADER},
                "content": document,
            },
            **failed,
            **errors("400", "401", "403", "409", "413", "415", "503"),
        },
    }
    update = {
        "summary": "Update one document",
        "description": "Update operators on this document only (never an upsert); If-Match as for PUT.",
        "parameters": conditions,
        "requestBody": openapi.body(PATCH_BODY),
        "responses": {
            "200": {"description": "the updated document", "headers": etags.ETAG_HEADER, "content": document},
            **failed,
            **errors("400", "401", "403", "404", "409", "413", "415", "503"),
        },
    }
    delete = {
        "summary": "Delete one document",
        "parameters": conditions,
        "responses": {
            "204": {"description": "deleted"},
            **failed,
            **errors("400", "401", "403", "404", "413", "415", "503"),
        },
    }
    operations = {"get": read, "head": head, "put": describe(replace), "patch": describe(update),
                  "delete": describe(delete)}  # fmt: skip

    def scope(params: list[dict[str, Any]], tag: str) -> dict[str, Any]:
        return {
            "parameters": [*params, ID_PARAM, ID_TYPE_PARAM],
            **{
                method: {**op, "tags": [tag], "security": [{"basicAuth": []}], "operationId": f"{method}_{tag}"}
                for method, op in operations.items()
            },
        }

    return openapi.Section(
        paths={
            "/docdb/{db}/{collection}/{id}": scope([query.DATABASE_PARAM, query.COLLECTION_PARAM], "document_any"),
            "/docdb/demodb/{collection}/{id}": scope([query.COLLECTION_PARAM], "document_demodb"),
            "/docdb/demodb/democollection/{id}": scope([], "document_democollection"),
        }
    )
