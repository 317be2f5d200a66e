"""HTTP access to DynamoDB tables and DocumentDB collections.

Wiring only: the Chalice app, its getters (one client per Lambda container),
and thin routes that hand each request to one service call.
"""

from __future__ import annotations

import logging
from typing import Any

from chalice import Chalice, Response

from chalicelib import errors, paging, web
from chalicelib.settings import Settings

app = Chalice(app_name="docdb-rest")
app.log.setLevel(logging.INFO)

# --- getters: built on first use, reused for the life of the container -------

_SETTINGS: Settings | None = None
_LINKS: Any = None
_MOVIES: Any = None


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


# --- cross-cutting ----------------------------------------------------------


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


def _list_response(items: list[dict[str, str]], next_token: str | None) -> Response:
    request = app.current_request
    headers = {}
    if next_token:
        headers["Link"] = paging.next_link(web.request_path(request), web.query(request), next_token)
    return Response(body=items, headers=headers)


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
        headers={"Location": f"/link/{item['link_id']}"},
    )


@app.route("/link", methods=["GET"], cors=True)
def list_links() -> Response:
    """A page of links; ``Link: rel="next"`` when more may follow."""
    params = web.query(app.current_request)
    limit = paging.parse_limit(params.get("limit"))
    return _list_response(*get_link_store().list(limit, params.get("next")))


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
    return _list_response(*get_movie_store().list(limit, params.get("next")))


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

