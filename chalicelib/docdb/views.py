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

from chalicelib import web
from chalicelib.auth import Principal
from chalicelib.docdb import encoding, query
from chalicelib.docdb.service import CollectionService
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


def find(request: Request, service: CollectionService, database: str, name: str) -> Response:
    page = service.find(database, name, query.FindSpec.from_query(web.query(request)))
    total = {} if page.total is None else {"X-Total-Count": str(page.total)}
    return web.page_response(request, page.body, page.next_token, total)


def insert(request: Request, service: CollectionService, database: str, name: str) -> Response:
    documents, single = query.parse_documents(web.json_body(request, encoding.loads))
    stored = service.insert(database, name, documents)
    return web.json_response(insert_echo(stored, single), status=201)


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
    return web.json_response(encoding.dumps(service.update(database, name, spec)))


def delete(request: Request, service: CollectionService, database: str, name: str) -> Response:
    params = web.query(request)
    body = web.json_body(request, encoding.loads, required=False)
    flt = query.delete_filter(body, params.get("filter"), query.parse_flag(params.get("all"), "all"))
    return web.json_response(encoding.dumps(service.delete(database, name, flt)))


_HANDLERS: dict[str, Callable[[Request, CollectionService, str, str], Response]] = {
    "GET": find,
    "POST": insert,
    "PUT": insert,
    "PATCH": update,
    "DELETE": delete,
}
