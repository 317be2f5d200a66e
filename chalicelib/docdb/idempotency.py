"""Idempotency records on DocumentDB: the key and the write commit in one transaction.

A keyed write runs as one transaction that runs the write, then inserts the
key's record (its ``_id`` is a digest of scope and key) holding the
response, then commits: three commands where the write alone is one (a
single insert) or two (the writes that already run in a transaction).  So:

- when a first request with the key has committed, the record's insert is a
  duplicate key: the transaction is abandoned, which undoes this request's
  run of the write, and the kept response is replayed (or a 422 when the
  request differs);
- while the first is in flight, its uncommitted record makes this request's
  insert of the record a write conflict (code 112): 409 with
  ``Retry-After``, and this request's write is undone with its transaction;
- when the first failed (or its connection broke) before its commit, there
  is no record and nothing was written: the retry runs the write;
- when the write itself is refused (a 4xx: the document the first request
  deleted is gone, the ``_id`` it inserted exists, its ``If-Match`` no longer
  matches), the transaction is abandoned and the record is looked up, so a
  repeat of an applied write still answers the kept response.

A replay therefore tries the write inside a transaction that is never
committed: nothing it does is applied or seen by anyone.  The record is
written last because only then is the response known; writing it first
would cost a fourth command (the record, the write, the response, the
commit).

Records live in ``_docdb_rest.idempotency`` (a reserved database: no client
can reach it) with a TTL index on ``created_at`` (24 h), created once per container.
The TTL sweeper runs about once a minute, so a record past ``expires_at`` is
treated as absent (and removed) whatever the sweeper has done.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from chalice import Response

from chalicelib import idempotency
from chalicelib.docdb import transaction
from chalicelib.docdb.client import DUPLICATE_KEY, DocdbConnection
from chalicelib.docdb.transaction import WRITE_CONFLICT, Namespaces
from chalicelib.errors import ChaliceViewError

log = logging.getLogger(__name__)

DATABASE = transaction.JOURNAL_DATABASE  # reserved: no client reaches it
COLLECTION = "idempotency"


class _Kept(Exception):
    """A committed record exists for the key: abandon the transaction and answer from it."""


class _InFlight(Exception):
    """Another transaction holds the key's record: the first request is still running."""


class _Refused(Exception):
    """The write was refused (a 4xx, raised or returned): abandon it, then look for a kept response."""

    def __init__(self, response: Response | None = None, error: BaseException | None = None) -> None:
        self.response = response
        self.error = error

    def answer(self) -> Response:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def _epoch(value: datetime.datetime) -> float:
    if value.tzinfo is None:  # the driver reads dates back as naive UTC
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


class MongoRecords:
    """The records of keyed writes on one target collection (:class:`idempotency.Records`)."""

    def __init__(self, connection: DocdbConnection, namespaces: Namespaces, target: tuple[str, str]) -> None:
        self._connection = connection
        self._namespaces = namespaces
        self._target = target

    def execute(self, claim: idempotency.Claim, run: idempotency.Run) -> Response:
        advice = idempotency.unknown_outcome_advice(keyed=True)

        def operation(client: Any) -> Response:
            self._prepare(client)
            records = client[DATABASE][COLLECTION]
            # Twice at most: the second pass follows the removal of an expired record.
            for _ in range(2):
                refused: _Refused | None = None
                try:
                    return transaction.run(client, lambda session: self._run_and_keep(session, claim, run),
                                           "write", advice, self._connection.journal_after_commit)  # fmt: skip
                except _InFlight:
                    return idempotency.in_flight()
                except _Refused as exc:
                    refused = exc
                except _Kept:
                    pass
                existing = records.find_one({"_id": claim.id})
                live = existing is not None and _epoch(existing["expires_at"]) > claim.now
                if live:
                    assert existing is not None
                    kept = idempotency.Kept.from_record(existing)
                    return idempotency.answer_kept(claim, existing["fingerprint"], kept)
                if existing is not None:  # expired: the sweeper has not got to it yet
                    records.delete_one({"_id": claim.id, "expires_at": existing["expires_at"]})
                if refused is not None:
                    return refused.answer()
                # else the record expired or was swept meanwhile: run the write
            return idempotency.in_flight()  # a record kept reappearing: let the client come back

        return self._connection.run(operation)

    def _prepare(self, client: Any) -> None:
        """The records' collection and TTL index, and the target collection, once per container."""
        if not self._namespaces.known(DATABASE, COLLECTION):
            # On created_at with the TTL itself rather than expireAfterSeconds=0 on expires_at: the common
            # form on every DocumentDB version.  expires_at stays in the record for the check on read.
            client[DATABASE][COLLECTION].create_index(
                "created_at", expireAfterSeconds=idempotency.TTL_SECONDS, name="created_at_ttl"
            )
        self._namespaces.ensure(client, DATABASE, COLLECTION)
        self._namespaces.ensure(client, *self._target)

    @staticmethod
    def _run_and_keep(session: Any, claim: idempotency.Claim, run: idempotency.Run) -> Response:
        from pymongo.errors import OperationFailure

        try:
            response = run(session)
        except ChaliceViewError as exc:
            if exc.STATUS_CODE >= 500:
                raise
            raise _Refused(error=exc) from None
        except OperationFailure as exc:
            if exc.has_error_label("TransientTransactionError"):
                raise  # a conflict with another writer: the transaction runs again
            raise _Refused(error=exc) from None
        if not idempotency.keeps(response):
            raise _Refused(response=response)
        record = {
            "_id": claim.id,
            "scope": claim.scope,
            "key": claim.key,
            "fingerprint": claim.fingerprint,
            "created_at": _utc(claim.now),
            "expires_at": _utc(claim.expires_at),
            **idempotency.Kept.of(response).to_record(),
        }
        try:
            session.client[DATABASE][COLLECTION].insert_one(record, session=session)
        except OperationFailure as exc:
            if exc.code == DUPLICATE_KEY:
                raise _Kept from None
            if exc.code == WRITE_CONFLICT:
                raise _InFlight from None
            raise
        return response
