"""Links: URLs stored under a random id in a DynamoDB table.

The table has only a partition key (``link_id``, a uuid4): every access is by
id or a full scan, so a sort key would add nothing but a second key to carry.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib import openapi
from chalicelib.errors import BadRequestError, ServiceUnavailableError
from chalicelib.tables.schema import LINKS
from chalicelib.tables.table import StringItemTable, to_item
from chalicelib.web import is_text

if TYPE_CHECKING:
    from chalicelib.tables.idempotency import DynamoTransaction

MAX_URL_CHARS = 2048
LINK_BODY = {
    "type": "object",
    "properties": {"link": {"type": "string", "minLength": 1, "maxLength": MAX_URL_CHARS}},
    "required": ["link"],
    "additionalProperties": False,
}


def validate_link_body(body: Any) -> str:
    """The URL from a ``POST /link`` body, or a 400 saying what is wrong."""
    if not isinstance(body, dict) or set(body) != {"link"}:
        raise BadRequestError('the body must be exactly {"link": "<http(s) URL>"}')
    url = body["link"]
    if not isinstance(url, str) or not url:
        raise BadRequestError("link must be a non-empty string")
    if len(url) > MAX_URL_CHARS:
        raise BadRequestError(f"link must be at most {MAX_URL_CHARS} characters")
    if not is_text(url):
        raise BadRequestError("link must be valid Unicode text")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise BadRequestError("link must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise BadRequestError("link is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadRequestError("link must be an http:// or https:// URL with a host")
    return url


def is_link_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


class LinkStore(StringItemTable):
    """The links table (partition key ``link_id``)."""

    key = LINKS.key
    kind = "link"

    def create(self, url: str, tx: DynamoTransaction | None = None) -> dict[str, str]:
        """Store ``url`` under a new id; an existing id is never overwritten.

        With ``tx`` (a keyed write) the put joins that transaction instead.
        """
        if tx is not None:
            item = {self.key: str(uuid.uuid4()), "link": url}
            tx.add(
                {"Put": {"TableName": self._table, "Item": to_item(item),
                         "ConditionExpression": "attribute_not_exists(#k)",
                         "ExpressionAttributeNames": {"#k": self.key}}},
                refused=lambda: ServiceUnavailableError("could not allocate a link id; try again"),
            )  # fmt: skip
            return item
        for _ in range(3):
            item = {self.key: str(uuid.uuid4()), "link": url}
            with self.errors():
                try:
                    self._client.put_item(
                        TableName=self._table,
                        Item=to_item(item),
                        ConditionExpression="attribute_not_exists(#k)",
                        ExpressionAttributeNames={"#k": self.key},
                    )
                except self._client.exceptions.ConditionalCheckFailedException:
                    continue  # a uuid4 collision: astronomically rare, but never overwrite
            return item
        raise ServiceUnavailableError("could not allocate a link id; try again")

    def valid_key(self, key_value: str) -> bool:
        return is_link_id(key_value)


def openapi_section() -> openapi.Section:
    """``/link`` and ``/link/{link_id}``."""
    from chalicelib.idempotency import describe  # deferred: only this document needs it

    link_id = openapi.path_param("link_id", {"type": "string", "minLength": 1, "maxLength": 36}, "a link id (uuid4)")
    return openapi.Section(
        paths={
            "/link": {
                "post": describe({
                    "summary": "Store a link",
                    "operationId": "create_link",
                    "requestBody": openapi.body(LINK_BODY),
                    "responses": {
                        "201": {
                            "description": "stored",
                            "headers": {"Location": {"description": "/link/<id>", "schema": {"type": "string"}}},
                            "content": openapi.json_content(
                                {"type": "object", "properties": {"link_id": {"type": "string"}},
                                 "required": ["link_id"]}
                            ),
                        },
                        **openapi.errors("400", "413", "415", "503"),
                    },
                }),
                "get": {
                    "summary": "List links",
                    "operationId": "list_links",
                    "parameters": openapi.page_parameters(),
                    "responses": {
                        "200": openapi.page_response(openapi.ref("Link")),
                        **openapi.errors("400", "503"),
                    },
                },
            },
            "/link/{link_id}": {
                "parameters": [link_id],
                "get": {
                    "summary": "One link",
                    "operationId": "get_link",
                    "responses": {
                        "200": {"description": "the link", "content": openapi.json_content(openapi.ref("Link"))},
                        **openapi.errors("404", "503"),
                    },
                },
                "delete": describe({
                    "summary": "Delete a link",
                    "operationId": "delete_link",
                    "responses": {"204": {"description": "deleted"}, **openapi.errors("404", "503")},
                }),
            },
        },
        schemas={
            "Link": {
                "type": "object",
                "properties": {"link_id": {"type": "string"}, "link": {"type": "string"}},
                "required": ["link_id", "link"],
            }
        },
    )
