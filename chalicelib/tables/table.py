"""What the links and movies stores share: a DynamoDB table of string items.

Items here hold only string attributes, so they are written as ``{"S": …}``
directly; boto3's TypeSerializer would cost its ~100 ms import on every cold
start for nothing it adds to strings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.aws import aws_errors
from chalicelib.errors import BadRequestError, NotFoundError
from chalicelib.paging import MAX_PAGE_BYTES, PageBuffer, decode_cursor, encode_cursor
from chalicelib.web import is_text

if TYPE_CHECKING:
    from chalicelib.tables.idempotency import DynamoTransaction

MAX_KEY_BYTES = 2048  # DynamoDB's limit for a partition key, in UTF-8 bytes


def to_item(fields: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"S": value} for name, value in fields.items()}


def from_item(item: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: value["S"] for name, value in item.items() if "S" in value}


class StringItemTable:
    """One DynamoDB table whose partition key ``key`` and attributes are strings."""

    key: str
    kind: str  # names the table in cursors and messages
    hidden: frozenset[str] = frozenset()  # attributes kept in the items but never shown

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def errors(self) -> Any:
        """Map this table's botocore failures to HTTP errors, naming the table in the log."""
        return aws_errors("DynamoDB", self._table)

    def valid_key(self, key_value: str) -> bool:
        """Whether ``key_value`` could be a key here; others are 404 without a call."""
        # Text UTF-8 cannot hold (a lone surrogate) cannot be a stored key.
        return is_text(key_value) and 0 < len(key_value.encode("utf-8")) <= MAX_KEY_BYTES

    def get(self, key_value: str) -> dict[str, str]:
        item = self.read(key_value)
        if item is None:
            raise NotFoundError(f"no {self.kind} {key_value[:64]!r}")
        return self.public(item)

    def read(self, key_value: str) -> dict[str, str] | None:
        """The whole item, hidden attributes included, or None when there is none."""
        if not self.valid_key(key_value):
            return None
        with self.errors():
            response = self._client.get_item(
                TableName=self._table, Key=to_item({self.key: key_value}), ConsistentRead=True
            )
        return from_item(response["Item"]) if "Item" in response else None

    def public(self, item: dict[str, str]) -> dict[str, str]:
        """``item`` as callers see it: without the attributes in ``hidden``."""
        return {name: value for name, value in item.items() if name not in self.hidden} if self.hidden else item

    def delete(self, key_value: str, tx: DynamoTransaction | None = None) -> None:
        """Delete the item, or 404; with ``tx`` (a keyed write) the delete joins that transaction."""
        if not self.valid_key(key_value):
            raise NotFoundError(f"no {self.kind} {key_value[:64]!r}")
        if tx is not None:
            tx.add(
                {"Delete": {"TableName": self._table, "Key": to_item({self.key: key_value}),
                            "ConditionExpression": "attribute_exists(#k)",
                            "ExpressionAttributeNames": {"#k": self.key}}},
                refused=lambda: NotFoundError(f"no {self.kind} {key_value[:64]!r}"),
            )  # fmt: skip
            return
        with self.errors():
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key=to_item({self.key: key_value}),
                    ConditionExpression="attribute_exists(#k)",
                    ExpressionAttributeNames={"#k": self.key},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                raise NotFoundError(f"no {self.kind} {key_value[:64]!r}") from None

    def list(
        self, limit: int, cursor: str | None, max_bytes: int = MAX_PAGE_BYTES
    ) -> tuple[bytearray, str | None]:
        """A JSON array of up to ``limit`` items, and the cursor of the next page.

        A scan page stops at 1 MB whatever ``Limit`` says, so this keeps
        scanning until the page is full or the table ends.  The cursor is a
        key to start after (DynamoDB's LastEvaluatedKey, or the last item's
        key when the page is cut short to stay within ``max_bytes``), so
        walking the cursors yields every item exactly once.
        """
        start = self._start_key(cursor) if cursor is not None else None
        page = PageBuffer(max_bytes)
        last: dict[str, str] | None = None
        while page.count < limit:
            kwargs: dict[str, Any] = {"TableName": self._table, "Limit": limit - page.count}
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            with self.errors():
                response = self._client.scan(**kwargs)
            for raw in response.get("Items", ()):
                item = from_item(raw)
                if not page.add(json.dumps(self.public(item), ensure_ascii=False, separators=(",", ":")).encode()):
                    assert last is not None  # an item is at most ~25 KB, far below the budget
                    return page.body(), encode_cursor(self.kind, v=last[self.key])
                last = item
            start = response.get("LastEvaluatedKey")
            if start is None:
                return page.body(), None
        assert start is not None  # the loop returns when the table ends
        return page.body(), encode_cursor(self.kind, v=from_item(start)[self.key])

    def _start_key(self, cursor: str) -> dict[str, dict[str, str]]:
        value = decode_cursor(cursor, self.kind).get("v")
        if not isinstance(value, str) or not self.valid_key(value):
            raise BadRequestError("next is not a cursor this list issued; start again without it")
        return to_item({self.key: value})
