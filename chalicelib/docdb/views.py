"""DocumentDB requests: what a request says, one service call, the response.

The routes in app.py hand over the request and a getter for the service;
this module is the only place that turns DocumentDB HTTP requests into
service calls, so a request reads top-down: app.py → here → query.py
(parsing and the allowlist) → service.py → the driver.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Response
from chalice.app import Request

from chalicelib import web
from chalicelib.auth import Principal
from chalicelib.docdb import encoding, query
from chalicelib.docdb.service import CollectionService

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
    return web.json_response(encoding.dumps(stored[0] if single else stored), status=201)


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
