"""Favorite movies: one movie per person, keyed by the person's name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib import openapi
from chalicelib.errors import BadRequestError
from chalicelib.tables.schema import MOVIES
from chalicelib.tables.table import MAX_KEY_BYTES, StringItemTable, to_item

if TYPE_CHECKING:
    from chalicelib.tables.idempotency import DynamoTransaction

MAX_MOVIE_CHARS = 512
MOVIE_BODY = {
    "type": "object",
    "properties": {"favorite_movie": {"type": "string", "minLength": 1, "maxLength": MAX_MOVIE_CHARS}},
    "required": ["favorite_movie"],
    "additionalProperties": False,
}


def validate_movie_body(body: Any) -> str:
    """The title from a ``PUT /movies/{name}`` body, or a 400 saying what is wrong."""
    if not isinstance(body, dict) or set(body) != {"favorite_movie"}:
        raise BadRequestError('the body must be exactly {"favorite_movie": "<title>"}')
    title = body["favorite_movie"]
    if not isinstance(title, str) or not title.strip():
        raise BadRequestError("favorite_movie must be a non-empty string")
    if len(title) > MAX_MOVIE_CHARS:
        raise BadRequestError(f"favorite_movie must be at most {MAX_MOVIE_CHARS} characters")
    return title


def check_name(name: str) -> str:
    if not name or len(name.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadRequestError(f"name must be 1 to {MAX_KEY_BYTES} bytes of UTF-8")
    return name


class MovieStore(StringItemTable):
    """The favorite-movies table (partition key ``name``)."""

    key = MOVIES.key
    kind = "movie"

    def put(self, name: str, title: str, tx: DynamoTransaction | None = None) -> dict[str, str]:
        item = {self.key: check_name(name), "favorite_movie": title}
        if tx is not None:
            tx.add({"Put": {"TableName": self._table, "Item": to_item(item)}})
            return item
        with self.errors():
            self._client.put_item(TableName=self._table, Item=to_item(item))
        return item


def openapi_section() -> openapi.Section:
    """``/movies`` and ``/movies/{name}``."""
    from chalicelib.idempotency import describe  # deferred: only this document needs it

    name = openapi.path_param("name", {"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES}, "whose favorite")
    movie = openapi.json_content(openapi.ref("Movie"))
    return openapi.Section(
        paths={
            "/movies": {
                "get": {
                    "summary": "List favorite movies",
                    "operationId": "list_movies",
                    "parameters": openapi.page_parameters(),
                    "responses": {
                        "200": openapi.page_response(openapi.ref("Movie")),
                        **openapi.errors("400", "503"),
                    },
                }
            },
            "/movies/{name}": {
                "parameters": [name],
                "get": {
                    "summary": "Someone's favorite movie",
                    "operationId": "get_movie",
                    "responses": {"200": {"description": "the favorite", "content": movie},
                                  **openapi.errors("404", "503")},
                },
                "put": describe({
                    "summary": "Create or replace someone's favorite movie",
                    "operationId": "put_movie",
                    "requestBody": openapi.body(MOVIE_BODY),
                    "responses": {
                        "200": {"description": "what was stored", "content": movie},
                        **openapi.errors("400", "413", "415", "503"),
                    },
                }),
                "delete": describe({
                    "summary": "Forget someone's favorite movie",
                    "operationId": "delete_movie",
                    "responses": {"204": {"description": "deleted"}, **openapi.errors("404", "503")},
                }),
            },
        },
        schemas={
            "Movie": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "favorite_movie": {"type": "string"}},
                "required": ["name", "favorite_movie"],
            }
        },
    )
