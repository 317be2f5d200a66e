"""HTTP access to DynamoDB tables and DocumentDB collections.

Wiring only: the Chalice app, its getters (one client per Lambda container),
and thin routes that hand each request to one service call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from chalice import AuthResponse, Chalice, Response
from chalice.app import Request

from chalicelib import errors, paging, web
from chalicelib.settings import Settings

if TYPE_CHECKING:
    # Types only: each getter imports its module on first use, so a cold
    # request pays only for the backend it touches (botocore for the tables,
    # pymongo and bson for DocumentDB; see tests/unit/test_import_guards.py).
    from chalicelib.auth import UserDirectory
    from chalicelib.docdb.service import CollectionService
    from chalicelib.secrets import SecretsLoader
    from chalicelib.tables.idempotency import DynamoRecords
    from chalicelib.tables.links import LinkStore
    from chalicelib.tables.movies import MovieStore

app = Chalice(app_name="docdb-rest")
app.log.setLevel(logging.INFO)

AUTHORIZER_TTL_SECONDS = 300


# --- dependencies: built on first use, reused for the life of the container ---


class Dependencies:
    """Everything the routes use, each built by its getter below on first use.

    The one place that holds built clients: tests swap one in with
    :meth:`override` and forget them all with :meth:`reset`, as a new Lambda
    container would.
    """

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.links: LinkStore | None = None
        self.movies: MovieStore | None = None
        self.table_records: DynamoRecords | None = None
        self.secrets: SecretsLoader | None = None
        self.users: UserDirectory | None = None
        self.collections: CollectionService | None = None

    def reset(self) -> None:
        """Forget every built dependency, closing the database client."""
        if self.collections is not None:
            self.collections.close()
        vars(self).update(dict.fromkeys(vars(self)))

    @contextlib.contextmanager
    def override(self, **built: Any) -> Iterator[None]:
        """Use ``built`` (``links=…``, ``collections=…``) for a while, then go back."""
        unknown = set(built) - set(vars(self))
        if unknown:
            raise TypeError(f"no such dependencies: {', '.join(sorted(unknown))}")
        saved = {name: getattr(self, name) for name in built}
        vars(self).update(built)
        try:
            yield
        finally:
            vars(self).update(saved)


deps = Dependencies()


def get_settings() -> Settings:
    if deps.settings is None:
        deps.settings = Settings.from_env()
    return deps.settings


def get_link_store() -> LinkStore:
    if deps.links is None:
        from chalicelib.aws import client
        from chalicelib.tables.links import LinkStore

        deps.links = LinkStore(client("dynamodb"), get_settings().require("links_table"))
    return deps.links


def get_movie_store() -> MovieStore:
    if deps.movies is None:
        from chalicelib.aws import client
        from chalicelib.tables.movies import MovieStore

        deps.movies = MovieStore(client("dynamodb"), get_settings().require("movies_table"))
    return deps.movies


def get_table_records() -> DynamoRecords:
    """Where keyed writes on the DynamoDB tables keep their Idempotency-Key records."""
    if deps.table_records is None:
        from chalicelib.aws import client
        from chalicelib.tables.idempotency import DynamoRecords

        deps.table_records = DynamoRecords(client("dynamodb"), get_settings().require("idempotency_table"))
    return deps.table_records


def get_secrets() -> SecretsLoader:
    if deps.secrets is None:
        from chalicelib.secrets import SecretsLoader, secrets_client

        deps.secrets = SecretsLoader(secrets_client, get_settings().secret_ttl_seconds)
    return deps.secrets


def get_user_directory() -> UserDirectory:
    if deps.users is None:
        from chalicelib.auth import UserDirectory

        settings = get_settings()
        secret_id, ttl = settings.require("api_users_secret_id"), settings.api_users_ttl_seconds
        deps.users = UserDirectory(lambda: get_secrets().get_json(secret_id, ttl), AUTHORIZER_TTL_SECONDS)
    return deps.users


def get_collection_service() -> CollectionService:
    if deps.collections is None:
        from functools import partial

        from chalicelib.docdb.client import DocdbConnection, build_client
        from chalicelib.docdb.service import CollectionService

        settings = get_settings()
        connection = DocdbConnection(
            get_secrets(),
            settings.require("docdb_secret_id"),
            settings.docdb_ca_file,
            settings.docdb_pool_size,
            factory=partial(build_client, write_concern=settings.docdb_write_concern),
            deadline_on_writes=settings.docdb_deadline_on_writes,
            journal_after_commit=settings.docdb_journal_after_commit,
        )
        deps.collections = CollectionService(connection)
    return deps.collections


# --- cross-cutting ----------------------------------------------------------


def _request() -> Request:
    """The request being served (Chalice sets it before calling a route)."""
    assert app.current_request is not None
    return app.current_request


# Basic auth, and the Data API's key headers.
_CREDENTIAL_HEADERS = ("authorization", "apikey", "api-key")


@app.middleware("http")
def every_request(event: Any, get_response: Any) -> Response:
    """What every request passes through, outermost first.

    One middleware rather than three: Chalice wraps each one around every
    request, and the layers showed in the warm find's overhead.

    1. One JSON log line (chalicelib/requestlog.py), outermost, so it sees the final status.
    2. One budget for the DocumentDB checks (chalicelib/docdb/budget.py), so what a request's
       expressions build and its regular expressions' length are bounded in all.
    3. The error and security headers (:func:`_finish`).
    """
    from chalicelib import requestlog
    from chalicelib.docdb import budget

    def within_budget(event: Any) -> Response:
        with budget.request_budget():
            return _finish(event, get_response(event))

    return requestlog.middleware(event, within_budget)


def _finish(event: Any, response: Response) -> Response:
    """Add Retry-After to every 503, and the request id to every 500.

    Every response carries ``X-Content-Type-Options: nosniff``; those to an
    authenticated caller also ``Cache-Control: no-store``, so no shared cache
    keeps one user's documents for another.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    headers = event.headers or {}
    if (event.context or {}).get("authorizer") or any(headers.get(h) for h in _CREDENTIAL_HEADERS):
        response.headers["Cache-Control"] = "no-store"
    if response.status_code == 503:
        response.headers.setdefault("Retry-After", str(errors.RETRY_AFTER_SECONDS))
    elif response.status_code == 500 and isinstance(response.body, dict):
        request_id = (event.context or {}).get("requestId", "unknown")
        response.body = {
            "Code": "InternalServerError",
            "Message": f"An internal server error occurred (request id {request_id}).",
        }
    return response


# --- links ------------------------------------------------------------------


@app.route("/link", methods=["POST"], cors=web.CORS)
def create_link() -> Response:
    """Store a URL; 201 with its new id and a Location header."""
    from chalicelib.idempotency import idempotent, route_scope
    from chalicelib.tables.links import validate_link_body

    url = validate_link_body(web.json_body(_request()))

    def run(tx: Any) -> Response:
        item = get_link_store().create(url, tx)
        return Response(
            body={"link_id": item["link_id"]},
            status_code=201,
            # Relative to the request path, so it carries API Gateway's stage prefix.
            # rstrip: `POST /link/` must not answer `/link//<id>`.
            headers={"Location": f"{web.request_path(_request()).rstrip('/')}/{item['link_id']}"},
        )

    return idempotent(_request(), route_scope, get_table_records, run)


@app.route("/link", methods=["GET"], cors=web.CORS)
def list_links() -> Response:
    """A page of links; ``Link: rel="next"`` when more may follow."""
    params = web.query(_request())
    limit = paging.parse_limit(params.get("limit"))
    return web.page_response(_request(), *get_link_store().list(limit, params.get("next")))


@app.route("/link/{link_id}", methods=["GET"], cors=web.CORS)
def get_link(link_id: str) -> dict[str, str]:
    """One link by id; 404 when there is none."""
    return get_link_store().get(link_id)


@app.route("/link/{link_id}", methods=["DELETE"], cors=web.CORS)
def delete_link(link_id: str) -> Response:
    """Delete one link; 204, or 404 when there is none."""
    from chalicelib.idempotency import idempotent, route_scope

    def run(tx: Any) -> Response:
        get_link_store().delete(link_id, tx)
        return Response(body="", status_code=204)

    return idempotent(_request(), route_scope, get_table_records, run)


# --- favorite movies --------------------------------------------------------


@app.route("/movies", methods=["GET"], cors=web.CORS)
def list_movies() -> Response:
    """A page of favorite movies; ``Link: rel="next"`` when more may follow."""
    params = web.query(_request())
    limit = paging.parse_limit(params.get("limit"))
    return web.page_response(_request(), *get_movie_store().list(limit, params.get("next")))


@app.route("/movies/{name}", methods=["GET"], cors=web.CORS)
def get_movie(name: str) -> Response:
    """Someone's favorite movie and its ETag; 404 when they have none, 304 when If-None-Match matches."""
    from chalicelib import etags

    return etags.tagged_response(lambda conditions: get_movie_store().get_tagged(name, conditions), _request())


@app.route("/movies/{name}", methods=["PUT"], cors=web.CORS)
def put_movie(name: str) -> Response:
    """Create or replace someone's favorite movie; 200 with what was stored and its ETag.

    ``If-Match`` replaces only that version, ``If-None-Match: *`` only creates; 412 otherwise.
    """
    from chalicelib import etags
    from chalicelib.idempotency import idempotent, route_scope
    from chalicelib.tables.movies import validate_movie_body

    title = validate_movie_body(web.json_body(_request()))

    def run(tx: Any) -> Response:
        return etags.tagged_response(lambda conditions: get_movie_store().put(name, title, conditions, tx), _request())

    return idempotent(_request(), route_scope, get_table_records, run)


@app.route("/movies/{name}", methods=["DELETE"], cors=web.CORS)
def delete_movie(name: str) -> Response:
    """Forget someone's favorite movie; 204, 404 when there was none, 412 when If-Match fails."""
    from chalicelib import etags
    from chalicelib.idempotency import idempotent, route_scope

    conditions = etags.Preconditions.from_headers(_request().headers)

    def run(tx: Any) -> Response:
        get_movie_store().delete_if(name, conditions, tx)
        return Response(body="", status_code=204)

    return idempotent(_request(), route_scope, get_table_records, run)


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


_DOCDB = {"methods": ["GET", "POST", "PUT", "PATCH", "DELETE"], "authorizer": basic_auth, "cors": web.CORS}


def _docdb(database: str, collection: str) -> Response:
    # Deferred: the views import bson and the driver, which only these routes need.
    from chalicelib.docdb import views

    return views.collection(_request(), database, collection, get_collection_service)


@app.route("/docdb/{db}/{collection}", **_DOCDB)
def docdb_any(db: str, collection: str) -> Response:
    """MongoDB find (GET), insert (POST, PUT), update (PATCH) and delete (DELETE) on any collection."""
    return _docdb(db, collection)


@app.route("/docdb/demodb/{collection}", **_DOCDB)
def docdb_demodb(collection: str) -> Response:
    """The same operations on a collection of the ``demodb`` database."""
    return _docdb("demodb", collection)


@app.route("/docdb/demodb/democollection", **_DOCDB)
def docdb_democollection() -> Response:
    """The same operations on ``demodb.democollection``."""
    return _docdb("demodb", "democollection")


_AGGREGATE = {**_DOCDB, "methods": ["POST"]}


def _aggregate(database: str, collection: str) -> Response:
    from chalicelib.docdb import views  # deferred, as in _docdb

    return views.aggregate(_request(), database, collection, get_collection_service)


@app.route("/docdb/{db}/{collection}/_aggregate", **_AGGREGATE)
def docdb_any_aggregate(db: str, collection: str) -> Response:
    """Run a sandboxed aggregation pipeline on any collection; a page of its results."""
    return _aggregate(db, collection)


@app.route("/docdb/demodb/{collection}/_aggregate", **_AGGREGATE)
def docdb_demodb_aggregate(collection: str) -> Response:
    """The same on a collection of the ``demodb`` database."""
    return _aggregate("demodb", collection)


@app.route("/docdb/demodb/democollection/_aggregate", **_AGGREGATE)
def docdb_democollection_aggregate() -> Response:
    """The same on ``demodb.democollection``."""
    return _aggregate("demodb", "democollection")


# --- the Atlas Data API's contract (credentials checked in the handler) -----

# content_types "*/*": the view answers a wrong Content-Type itself, in the Data API's error shape.
_DATA_API = {"methods": ["POST"], "content_types": ["*/*"], "cors": web.CORS}


@app.route("/action/{action}", **_DATA_API)
def data_api_action(action: str) -> Response:
    """An Atlas Data API action (findOne, find, insertOne, …) on any collection your grants allow."""
    return data_api_request(action)


@app.route("/app/{app_id}/endpoint/data/v1/action/{action}", **_DATA_API)
def data_api_app_action(app_id: str, action: str) -> Response:
    """The same, at the path an Atlas Data API URL has (``app_id`` is ignored)."""
    return data_api_request(action)


def data_api_request(action: str) -> Response:
    # Deferred, as in _docdb: the Data API's views import bson and the driver.
    from chalicelib.dataapi import views

    return views.handle(_request(), action, get_user_directory, get_collection_service,
                        get_settings().data_api_return_type)  # fmt: skip


# --- DocumentDB documents by _id ----------------------------------------------

_DOCUMENT = {"methods": ["GET", "HEAD", "PUT", "PATCH", "DELETE"], "authorizer": basic_auth, "cors": web.CORS}


def _document(database: str, collection: str, doc_id: str) -> Response:
    from chalicelib.docdb import documents  # deferred like the collection views

    return documents.document(_request(), database, collection, doc_id, get_collection_service)


@app.route("/docdb/{db}/{collection}/{id}", **_DOCUMENT)
def docdb_document_any(db: str, collection: str, id: str) -> Response:
    """One document by _id: read (GET, HEAD), replace (PUT), update (PATCH), delete (DELETE), with ETags."""
    return _document(db, collection, id)


@app.route("/docdb/demodb/{collection}/{id}", **_DOCUMENT)
def docdb_demodb_document(collection: str, id: str) -> Response:
    """The same on one document of a ``demodb`` collection."""
    return _document("demodb", collection, id)


@app.route("/docdb/demodb/democollection/{id}", **_DOCUMENT)
def docdb_democollection_document(id: str) -> Response:
    """The same on one document of ``demodb.democollection``."""
    return _document("demodb", "democollection", id)


# --- operations: health and the API description ------------------------------


@app.route("/health", methods=["GET"], cors=web.CORS)
def health() -> dict[str, str]:
    """Liveness for load balancers and smoke tests: answers without touching any backend."""
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"], cors=web.CORS)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document of every route, parameter, body, response and error."""
    from chalicelib import openapi

    return openapi.document()


@app.route("/docs", methods=["GET"], cors=web.CORS)
def docs_page() -> Response:
    """The interactive API reference (Swagger UI) over /openapi.json; "Try it out" calls this API."""
    from chalicelib import docs

    assets = get_settings().docs_assets_url
    return Response(body=docs.page(assets), headers=docs.headers(assets))
