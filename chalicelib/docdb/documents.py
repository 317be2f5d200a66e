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

from chalicelib import etags, web
from chalicelib.auth import Principal
from chalicelib.docdb import allowlist, encoding, query
from chalicelib.docdb.documents_service import Tagged, check_response_size
from chalicelib.docdb.service import CollectionService
from chalicelib.errors import BadRequestError

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
    written = service.replace_document(*target, body, conditions)
    if written.created:
        location = web.request_path(request)
        id_type = web.query(request).get("id_type")
        if id_type:
            location += f"?id_type={id_type}"
        return respond(201, etags.quote(written.etag), written, {"Location": location})
    return respond(200, etags.quote(written.etag), written)


def update(request: Request, service: CollectionService, target: Target, conditions: etags.Preconditions) -> Response:
    change = query.as_update(web.json_body(request, encoding.loads))
    written = service.update_document(*target, change, conditions)
    return respond(200, etags.quote(written.etag), written)


def delete(request: Request, service: CollectionService, target: Target, conditions: etags.Preconditions) -> Response:
    service.delete_document(*target, conditions)
    return respond(204)


_HANDLERS: dict[str, Callable[[Request, CollectionService, Target, etags.Preconditions], Response]] = {
    "GET": read,
    "HEAD": read,
    "PUT": replace,
    "PATCH": update,
    "DELETE": delete,
}
