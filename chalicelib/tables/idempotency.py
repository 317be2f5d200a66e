"""Idempotency records on DynamoDB: the item and the key's record in one TransactWriteItems.

A keyed write does not call PutItem or DeleteItem: the store adds its item
to a :class:`DynamoTransaction`, and the record (condition: no unexpired
record for the key) is added last, so both commit or neither does.  When the
transaction is cancelled its reasons say why:

- the record's condition failed: a record exists (DynamoDB returns it, as
  ``ReturnValuesOnConditionCheckFailure=ALL_OLD``): replay it, or 422;
- ``TransactionConflict``: another request with the key is in flight: 409;
- the item's own condition failed (a delete of a missing item): that
  store's error (404), and no record, so a retry runs again.

A reply lost on the way back is retried by botocore with the same request;
the retry finds the record the first attempt committed and replays it.  If
every attempt's reply is lost the outcome is unknown: 503
``WriteOutcomeUnknown``, and the client's retry with the same key resolves
it the same way.

Records live in the table named by ``IDEMPOTENCY_TABLE`` (partition key
``id``, DynamoDB TTL on ``expires_at``).  TTL deletes lazily (within days),
so the condition treats a record past ``expires_at`` as absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalice import Response

from chalicelib import idempotency
from chalicelib.aws import aws_errors
from chalicelib.errors import ServiceUnavailableError, WriteOutcomeUnknownError

log = logging.getLogger(__name__)

KEY = "id"


@dataclass
class DynamoTransaction:
    """The items of one keyed write, and what a failed condition on each means."""

    items: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[Callable[[], Exception] | None] = field(default_factory=list)

    def add(self, item: dict[str, Any], refused: Callable[[], Exception] | None = None) -> None:
        """Add a TransactWriteItems entry (``{"Put": …}``, ``{"Delete": …}``); ``refused()`` if its condition fails."""
        self.items.append(item)
        self.refusals.append(refused)


def _string_map(values: dict[str, str]) -> dict[str, Any]:
    return {"M": {name: {"S": value} for name, value in values.items()}}


def _from_string_map(value: dict[str, Any]) -> dict[str, str]:
    return {name: inner["S"] for name, inner in value.get("M", {}).items()}


class DynamoRecords:
    """The idempotency table (:class:`chalicelib.idempotency.Records`)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def execute(self, claim: idempotency.Claim, run: idempotency.Run) -> Response:
        tx = DynamoTransaction()
        response = run(tx)  # validates and collects the item; writes nothing
        if not idempotency.keeps(response) or not tx.items:
            return response
        kept = idempotency.Kept.of(response)
        record = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    KEY: {"S": claim.id},
                    "scope": {"S": claim.scope},
                    "key": {"S": claim.key},
                    "fingerprint": _string_map(claim.fingerprint),
                    "status": {"N": str(kept.status)},
                    "body": {"S": kept.body},
                    "headers": _string_map(kept.headers),
                    "created_at": {"N": str(int(claim.now))},
                    "expires_at": {"N": str(int(claim.expires_at))},
                },
                "ConditionExpression": "attribute_not_exists(#id) OR #expires <= :now",
                "ExpressionAttributeNames": {"#id": KEY, "#expires": "expires_at"},
                "ExpressionAttributeValues": {":now": {"N": str(int(claim.now))}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

        with aws_errors("DynamoDB", self._table):
            try:
                self._client.transact_write_items(TransactItems=[*tx.items, record])
            except self._client.exceptions.TransactionCanceledException as exc:
                return self._cancelled(claim, tx, exc.response.get("CancellationReasons") or [])
            except (ReadTimeoutError, ConnectionClosedError) as exc:
                log.warning("DynamoDB (%s) answer to a keyed write lost: %s", self._table, type(exc).__name__)
                raise WriteOutcomeUnknownError(
                    "DynamoDB's answer to the write was lost; it may or may not have been applied; "
                    + idempotency.unknown_outcome_advice(keyed=True)
                ) from None
        return response

    @staticmethod
    def _cancelled(claim: idempotency.Claim, tx: DynamoTransaction, reasons: list[dict[str, Any]]) -> Response:
        codes = [reason.get("Code") for reason in reasons]
        if len(reasons) == len(tx.items) + 1:
            mine = reasons[-1]
            if mine.get("Code") == "ConditionalCheckFailed" and "Item" in mine:
                existing = mine["Item"]
                kept = idempotency.Kept(
                    int(existing["status"]["N"]), existing["body"]["S"], _from_string_map(existing["headers"])
                )
                return idempotency.answer_kept(claim, _from_string_map(existing["fingerprint"]), kept)
            if "TransactionConflict" in codes:
                return idempotency.in_flight()
            for reason, refused in zip(reasons, tx.refusals, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed" and refused is not None:
                    raise refused()
        log.warning("a keyed DynamoDB write was cancelled: %s", codes)
        raise ServiceUnavailableError("DynamoDB cancelled the write; nothing was changed; try again shortly")
