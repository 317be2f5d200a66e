"""HTTP access to DynamoDB tables and DocumentDB collections.

Wiring only: the Chalice app, its getters (one client per Lambda container),
and thin routes that hand each request to one service call.
"""

from __future__ import annotations

import logging
from typing import Any

from chalice import AuthResponse, Chalice, Response

from chalicelib import errors, paging, web
from chalicelib.settings import Settings

app = Chalice(app_name="docdb-rest")
app.log.setLevel(logging.INFO)

# --- getters: built on first use, reused for the life of the container -------

_SETTINGS: Settings | None = None
_LINKS: Any = None
_MOVIES: Any = None
_SECRETS: Any = None
_USERS: Any = None
_COLLECTIONS: Any = None

AUTHORIZER_TTL_SECONDS = 300


def get_settings() -> Settings:
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = Settings.from_env()
    return _SETTINGS


def get_link_store() -> Any:
    global _LINKS
    if _LINKS is None:
        from chalicelib.aws import client
        from chalicelib.links import LinkStore

        _LINKS = LinkStore(client("dynamodb"), get_settings().require("links_table"))
    return _LINKS


def get_movie_store() -> Any:
    global _MOVIES
    if _MOVIES is None:
        from chalicelib.aws import client
        from chalicelib.movies import MovieStore

        _MOVIES = MovieStore(client("dynamodb"), get_settings().require("movies_table"))
    return _MOVIES


def get_secrets() -> Any:
    global _SECRETS
    if _SECRETS is None:
        from chalicelib.aws import client
        from chalicelib.secrets import SecretsLoader

        _SECRETS = SecretsLoader(lambda: client("secretsmanager"), get_settings().secret_ttl_seconds)
    return _SECRETS


def get_user_directory() -> Any:
    global _USERS
    if _USERS is None:
        from chalicelib.auth import UserDirectory

        settings = get_settings()
        secret_id, ttl = settings.require("api_users_secret_id"), settings.api_users_ttl_seconds
        _USERS = UserDirectory(lambda: get_secrets().get_json(secret_id, ttl), AUTHORIZER_TTL_SECONDS)
    return _USERS


def get_collection_service() -> Any:
    global _COLLECTIONS
    if _COLLECTIONS is None:
        from chalicelib.docdb.client import DocdbConnection
        from chalicelib.docdb.service import CollectionService

        settings = get_settings()
        connection = DocdbConnection(
            get_secrets(), settings.require("docdb_secret_id"), settings.docdb_ca_file, settings.docdb_pool_size
        )
        _COLLECTIONS = CollectionService(connection)
    return _COLLECTIONS


# --- cross-cutting ----------------------------------------------------------


@app.middleware("http")
def request_log(event: Any, get_response: Any) -> Response:
    """One JSON line per request (chalicelib/requestlog.py); registered first, so it sees the final status."""
    from chalicelib import requestlog

    return requestlog.middleware(event, get_response)


@app.middleware("http")
def error_details(event: Any, get_response: Any) -> Response:
    """Add Retry-After to every 503, and the request id to every 500."""
    response = get_response(event)
    if response.status_code == 503:
        response.headers.setdefault("Retry-After", str(errors.RETRY_AFTER_SECONDS))
    elif response.status_code == 500 and isinstance(response.body, dict):
        request_id = (event.context or {}).get("requestId", "unknown")
        response.body = {
            "Code": "InternalServerError",
            "Message": f"An internal server error occurred (request id {request_id}).",
        }
    return response


def _page_response(body: bytes | bytearray, next_token: str | None, headers: dict[str, str] | None = None) -> Response:
    """A page of a list, with ``Link: <…>; rel="next"`` when more may follow."""
    headers = dict(headers or {})
    if next_token:
        request = app.current_request
        headers["Link"] = paging.next_link(web.request_path(request), web.query(request), next_token)
    return web.json_response(body, headers=headers)


# --- links ------------------------------------------------------------------


@app.route("/link", methods=["POST"], cors=True)
def create_link() -> Response:
    """Store a URL; 201 with its new id and a Location header."""
    from chalicelib.links import validate_link_body

    url = validate_link_body(web.json_body(app.current_request))
    item = get_link_store().create(url)
    return Response(
        body={"link_id": item["link_id"]},
        status_code=201,
        # Relative to the request path, so it carries API Gateway's stage prefix.
        # rstrip: `POST /link/` must not answer `/link//<id>`.
        headers={"Location": f"{web.request_path(app.current_request).rstrip('/')}/{item['link_id']}"},
    )


@app.route("/link", methods=["GET"], cors=True)
def list_links() -> Response:
    """A page of links; ``Link: rel="next"`` when more may follow."""
    params = web.query(app.current_request)
    limit = paging.parse_limit(params.get("limit"))
    return _page_response(*get_link_store().list(limit, params.get("next")))


@app.route("/link/{link_id}", methods=["GET"], cors=True)
def get_link(link_id: str) -> dict[str, str]:
    """One link by id; 404 when there is none."""
    return get_link_store().get(link_id)


@app.route("/link/{link_id}", methods=["DELETE"], cors=True)
def delete_link(link_id: str) -> Response:
    """Delete one link; 204, or 404 when there is none."""
    get_link_store().delete(link_id)
    return Response(body="", status_code=204)


# --- favorite movies --------------------------------------------------------


@app.route("/movies", methods=["GET"], cors=True)
def list_movies() -> Response:
    """A page of favorite movies; ``Link: rel="next"`` when more may follow."""
    params = web.query(app.current_request)
    limit = paging.parse_limit(params.get("limit"))
    return _page_response(*get_movie_store().list(limit, params.get("next")))


@app.route("/movies/{name}", methods=["GET"], cors=True)
def get_movie(name: str) -> dict[str, str]:
    """Someone's favorite movie; 404 when they have none."""
    return get_movie_store().get(name)


@app.route("/movies/{name}", methods=["PUT"], cors=True)
def put_movie(name: str) -> dict[str, str]:
    """Create or replace someone's favorite movie; 200 with what was stored."""
    from chalicelib.movies import validate_movie_body

    title = validate_movie_body(web.json_body(app.current_request))
    return get_movie_store().put(name, title)


@app.route("/movies/{name}", methods=["DELETE"], cors=True)
def delete_movie(name: str) -> Response:
    """Forget someone's favorite movie; 204, or 404 when there was none."""
    get_movie_store().delete(name)
    return Response(body="", status_code=204)


# --- DocumentDB collections -------------------------------------------------


@app.authorizer(ttl_seconds=AUTHORIZER_TTL_SECONDS)
def basic_auth(auth_request: Any) -> AuthResponse:
    """HTTP Basic credentials checked against the API users secret."""
    from chalicelib import gateway

    try:
        result = get_user_directory().authenticate(auth_request.token)
    except errors.ServiceUnavailableError as exc:
        app.log.error("authorizer cannot check credentials: %s", exc)
        raise gateway.authorizer_unavailable("credentials cannot be checked right now") from None
    if result is None:
        raise gateway.unauthorized()
    user, grants = result
    # Every route is allowed here; the views enforce the grants.  That keeps
    # API Gateway's cached policy valid for whichever route comes next.
    return AuthResponse(routes=["*"], principal_id=user, context={"grants": grants})


_DOCDB = {"methods": ["GET", "POST", "PUT", "PATCH", "DELETE"], "authorizer": basic_auth, "cors": True}


@app.route("/docdb/{db}/{collection}", **_DOCDB)
def docdb_any(db: str, collection: str) -> Response:
    """MongoDB find (GET), insert (POST, PUT), update (PATCH) and delete (DELETE) on any collection."""
    return docdb_request(db, collection)


@app.route("/docdb/demodb/{collection}", **_DOCDB)
def docdb_demodb(collection: str) -> Response:
    """The same operations on a collection of the ``demodb`` database."""
    return docdb_request("demodb", collection)


@app.route("/docdb/demodb/democollection", **_DOCDB)
def docdb_democollection() -> Response:
    """The same operations on ``demodb.democollection``."""
    return docdb_request("demodb", "democollection")


def docdb_request(database: str, collection: str) -> Response:
    from chalicelib import auth
    from chalicelib.docdb import query

    request: Any = app.current_request
    query.check_namespace(database, collection)
    authorizer = (request.context or {}).get("authorizer") or {}
    if not auth.allowed(auth.parse_grants(authorizer.get("grants", "")), database, collection, request.method):
        raise errors.ForbiddenError(f"your grants do not allow {request.method} on {database}/{collection}")
    return _DOCDB_HANDLERS[request.method](request, database, collection)


def _find(request: Any, database: str, collection: str) -> Response:
    from chalicelib.docdb.query import FindSpec

    page = get_collection_service().find(database, collection, FindSpec.from_query(web.query(request)))
    total = {} if page.total is None else {"X-Total-Count": str(page.total)}
    return _page_response(page.body, page.next_token, total)


def _insert(request: Any, database: str, collection: str) -> Response:
    from chalicelib import encoding
    from chalicelib.docdb.query import parse_documents

    documents, single = parse_documents(web.json_body(request, encoding.loads))
    stored = get_collection_service().insert(database, collection, documents)
    return web.json_response(encoding.dumps(stored[0] if single else stored), status=201)


def _update(request: Any, database: str, collection: str) -> Response:
    from chalicelib import encoding
    from chalicelib.docdb.query import UpdateSpec, parse_flag

    allow_all = parse_flag(web.query(request).get("all"), "all")
    spec = UpdateSpec.from_body(web.json_body(request, encoding.loads), allow_all)
    return web.json_response(encoding.dumps(get_collection_service().update(database, collection, spec)))


def _delete(request: Any, database: str, collection: str) -> Response:
    from chalicelib import encoding
    from chalicelib.docdb.query import delete_filter, parse_flag

    params = web.query(request)
    body = web.json_body(request, encoding.loads, required=False)
    flt = delete_filter(body, params.get("filter"), parse_flag(params.get("all"), "all"))
    return web.json_response(encoding.dumps(get_collection_service().delete(database, collection, flt)))


_DOCDB_HANDLERS = {"GET": _find, "POST": _insert, "PUT": _insert, "PATCH": _update, "DELETE": _delete}


# --- operations: health and the API description ------------------------------


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    """Liveness for load balancers and smoke tests: answers without touching any backend."""
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"], cors=True)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document of every route, parameter, body, response and error."""
    from chalicelib import openapi

    return openapi.document()
