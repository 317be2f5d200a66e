"""Favorite movies: one movie per person, keyed by the person's name.

Each write stores a fresh revision (attribute ``rev``, never shown) and the
ETag is made from it, so ``If-Match`` / ``If-None-Match: *`` become the
write's own ConditionExpression: of concurrent writers holding the same
ETag, exactly one succeeds.  An item written before revisions existed gets a
digest of its title as its ETag; a write conditional on one reads the item
and then writes on condition that it is still exactly as read.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from chalicelib import etags, openapi
from chalicelib.errors import BadRequestError, NotFoundError
from chalicelib.tables.schema import MOVIES
from chalicelib.tables.table import MAX_KEY_BYTES, StringItemTable, to_item
from chalicelib.web import is_text

if TYPE_CHECKING:
    from chalicelib.tables.idempotency import DynamoTransaction

MAX_MOVIE_CHARS = 512
MOVIE_BODY = {
    "type": "object",
    "properties": {"favorite_movie": {"type": "string", "minLength": 1, "maxLength": MAX_MOVIE_CHARS}},
    "required": ["favorite_movie"],
    "additionalProperties": False,
}
REV = "rev"
MAX_ATTEMPTS = 4
_NEVER = "-"  # a revision never issued, for an If-Match that names none
_HEX = frozenset("0123456789abcdef")
Condition = dict[str, Any]  # ConditionExpression and its names and values, as put_item/delete_item take them


def etag_of(item: dict[str, str]) -> str:
    """The opaque ETag value of a stored item: its revision, or a digest of an old item's title."""
    rev = item.get(REV)
    if rev:
        return "r" + rev
    return "h" + hashlib.sha256(item["favorite_movie"].encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _revision_in(opaque: str) -> str | None:
    return opaque[1:] if len(opaque) == 33 and opaque[0] == "r" and set(opaque[1:]) <= _HEX else None


def _fast(conditions: etags.Preconditions) -> Condition | None:
    """The conditions as one ConditionExpression, or None when they need the item read first."""
    names = {"#k": "name"}
    if conditions.none:
        return {}
    if conditions.if_match is None and conditions.if_none_match == etags.ANY:
        return {"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": names}
    if conditions.if_none_match is not None:
        return None
    if conditions.if_match == etags.ANY:
        return {"ConditionExpression": "attribute_exists(#k)", "ExpressionAttributeNames": names}
    candidates = conditions.strong_match_candidates() or []
    if any(tag.startswith("h") for tag in candidates):
        return None
    revisions = [rev for rev in map(_revision_in, candidates) if rev is not None] or [_NEVER]
    values = {f":r{i}": {"S": rev} for i, rev in enumerate(revisions)}
    return {
        "ConditionExpression": f"attribute_exists(#k) AND #rev IN ({', '.join(values)})",
        "ExpressionAttributeNames": {**names, "#rev": REV},
        "ExpressionAttributeValues": values,
    }


def _exactly(current: dict[str, str] | None) -> Condition:
    """A condition that holds only while the item is exactly as ``current`` (None: absent)."""
    if current is None:
        return {"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": "name"}}
    if current.get(REV):
        return {
            "ConditionExpression": "#rev = :rev",
            "ExpressionAttributeNames": {"#rev": REV},
            "ExpressionAttributeValues": {":rev": {"S": current[REV]}},
        }
    return {
        "ConditionExpression": "attribute_exists(#k) AND attribute_not_exists(#rev) AND #t = :t",
        "ExpressionAttributeNames": {"#k": "name", "#rev": REV, "#t": "favorite_movie"},
        "ExpressionAttributeValues": {":t": {"S": current["favorite_movie"]}},
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
    if not is_text(title):
        raise BadRequestError("favorite_movie must be valid Unicode text")
    return title


def check_name(name: str) -> str:
    if not name or not is_text(name) or len(name.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadRequestError(f"name must be 1 to {MAX_KEY_BYTES} bytes of valid UTF-8")
    return name


class MovieStore(StringItemTable):
    """The favorite-movies table (partition key ``name``)."""

    key = MOVIES.key
    kind = "movie"
    hidden = frozenset({REV})

    def get_tagged(self, name: str, conditions: etags.Preconditions) -> tuple[dict[str, str], str]:
        """The movie and its ETag value; raises etags.NotModified or a 412 as the conditions say."""
        item = self.read(name)
        if item is None:
            raise NotFoundError(f"no movie {name[:64]!r}")
        etag = etag_of(item)
        conditions.check_read(etag)
        return self.public(item), etag

    def _condition(self, name: str, conditions: etags.Preconditions, must_exist: bool) -> tuple[Condition, bool]:
        """The write's ConditionExpression, and whether it was decided on the item as read.

        Revision ETags and ``*`` become one condition DynamoDB checks in the
        write itself.  A digest ETag (an item written before revisions) is
        decided on the item as read, and the write then holds only while the
        item is exactly as read; 404 (``must_exist``) or 412 when it fails now.
        """
        condition = _fast(conditions)
        if condition is not None:
            return condition, False
        current = self.read(name)
        if must_exist and current is None:
            raise NotFoundError(f"no movie {name[:64]!r}")
        if not conditions.allows_write(None if current is None else etag_of(current)):
            raise etags.failed("the movie")
        return _exactly(current), True

    def put(
        self,
        name: str,
        title: str,
        conditions: etags.Preconditions = etags.UNCONDITIONAL,
        tx: DynamoTransaction | None = None,
    ) -> tuple[dict[str, str], str]:
        """Create or replace the movie if the conditions hold (else 412); what was stored and its ETag value.

        With ``tx`` (a keyed write) the put, its condition included, joins that
        transaction instead of running; a failed condition there is the same 412.
        """
        item = {self.key: check_name(name), "favorite_movie": title, REV: uuid.uuid4().hex}
        if tx is not None:
            condition, _ = self._condition(name, conditions, must_exist=False)
            tx.add({"Put": {"TableName": self._table, "Item": to_item(item), **condition}},
                   refused=lambda: etags.failed("the movie"))  # fmt: skip
            return self.public(item), etag_of(item)
        for _ in range(MAX_ATTEMPTS):
            condition, read_first = self._condition(name, conditions, must_exist=False)
            with self.errors():
                try:
                    self._client.put_item(TableName=self._table, Item=to_item(item), **condition)
                except self._client.exceptions.ConditionalCheckFailedException:
                    if not read_first:
                        raise etags.failed("the movie") from None
                    continue  # it changed since it was read: decide again
            return self.public(item), etag_of(item)
        raise etags.failed("the movie kept changing")

    def delete_if(
        self, name: str, conditions: etags.Preconditions, tx: DynamoTransaction | None = None
    ) -> None:
        """Delete the movie if the conditions hold: 404 when there is none, 412 when they fail.

        With ``tx`` (a keyed write) the delete joins that transaction; when its
        condition fails there, the item is read to tell 404 from 412.
        """
        if conditions.none or (conditions.if_none_match is None and conditions.if_match == etags.ANY):
            return self.delete(name, tx)
        if tx is not None:
            condition, _ = self._condition(name, conditions, must_exist=True)

            def refused() -> Exception:
                gone = self.read(name) is None
                return NotFoundError(f"no movie {name[:64]!r}") if gone else etags.failed("the movie")

            tx.add({"Delete": {"TableName": self._table, "Key": to_item({"name": name}), **condition}}, refused=refused)
            return None
        for _ in range(MAX_ATTEMPTS):
            condition, read_first = self._condition(name, conditions, must_exist=True)
            with self.errors():
                try:
                    self._client.delete_item(
                        TableName=self._table,
                        Key=to_item({"name": name}),
                        # On a failed check DynamoDB returns the item as it was at that
                        # moment, so absent (404) and changed (412) are told apart atomically.
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        **condition,
                    )
                except self._client.exceptions.ConditionalCheckFailedException as exc:
                    if read_first:
                        continue  # it changed since it was read: decide again
                    if "Item" not in exc.response:
                        raise NotFoundError(f"no movie {name[:64]!r}") from None
                    raise etags.failed("the movie") from None
            return None
        raise etags.failed("the movie kept changing")


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
                    "parameters": [etags.IF_MATCH, etags.IF_NONE_MATCH],
                    "responses": {
                        "200": {"description": "the favorite", "headers": etags.ETAG_HEADER, "content": movie},
                        "304": etags.NOT_MODIFIED,
                        "412": etags.precondition_failed(),
                        **openapi.errors("400", "404", "503"),
                    },
                },
                "put": describe({
                    "summary": "Create or replace someone's favorite movie",
                    "description": "If-Match replaces only that version; If-None-Match: * only creates.",
                    "operationId": "put_movie",
                    "parameters": [etags.IF_MATCH, etags.IF_NONE_MATCH],
                    "requestBody": openapi.body(MOVIE_BODY),
                    "responses": {
                        "200": {"description": "what was stored", "headers": etags.ETAG_HEADER, "content": movie},
                        "412": etags.precondition_failed(),
                        **openapi.errors("400", "413", "415", "503"),
                    },
                }),
                "delete": describe({
                    "summary": "Forget someone's favorite movie",
                    "operationId": "delete_movie",
                    "parameters": [etags.IF_MATCH, etags.IF_NONE_MATCH],
                    "responses": {
                        "204": {"description": "deleted"},
                        "412": etags.precondition_failed(),
                        **openapi.errors("400", "404", "503"),
                    },
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
