"""Idempotency records on DocumentDB: the key and the write commit in one transaction.

A keyed write runs as one transaction that first inserts the key's record
(its ``_id`` is a digest of scope and key), then runs the write, then stores
the response in the record, then commits.  So:

- a second request with the key while the first is in flight conflicts on
  the record's ``_id`` at once (WriteConflict, code 112): 409 with
  ``Retry-After``, and the write is not run;
- once the first has committed, the insert of the record is a duplicate key:
  the transaction is abandoned before the write, and the kept response is
  replayed (or a 422 when the request differs);
- when the first failed (or its connection broke) before its commit, there
  is no record and nothing was written: the retry runs the write.

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

log = logging.getLogger(__name__)

DATABASE = transaction.JOURNAL_DATABASE  # reserved: no client reaches it
COLLECTION = "idempotency"


class _Kept(Exception):
    """A committed record exists for the key: abandon the transaction and answer from it."""


class _InFlight(Exception):
    """Another transaction holds the key's record: the first request is still running."""


class _NotKept(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


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
                try:
                    return transaction.run(client, lambda session: self._claim_and_run(session, claim, run),
                                           "write", advice, self._connection.journal_after_commit)  # fmt: skip
                except _InFlight:
                    return idempotency.in_flight()
                except _NotKept as refused:
                    return refused.response
                except _Kept:
                    pass
                existing = records.find_one({"_id": claim.id})
                if existing is None:
                    continue  # expired and swept meanwhile: run it
                if _epoch(existing["expires_at"]) <= claim.now:
                    records.delete_one({"_id": claim.id, "expires_at": existing["expires_at"]})
                    continue
                return idempotency.answer_kept(claim, existing["fingerprint"], idempotency.Kept.from_record(existing))
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
    def _claim_and_run(session: Any, claim: idempotency.Claim, run: idempotency.Run) -> Response:
        from pymongo.errors import OperationFailure

        records = session.client[DATABASE][COLLECTION]
        try:
            records.insert_one(
                {
                    "_id": claim.id,
                    "scope": claim.scope,
                    "key": claim.key,
                    "fingerprint": claim.fingerprint,
                    "created_at": _utc(claim.now),
                    "expires_at": _utc(claim.expires_at),
                },
                session=session,
            )
        except OperationFailure as exc:
            if exc.code == DUPLICATE_KEY:
                raise _Kept from None
            if exc.code == WRITE_CONFLICT:
                raise _InFlight from None
            raise
        response = run(session)
        if not idempotency.keeps(response):
            raise _NotKept(response)
        records.update_one(
            {"_id": claim.id}, {"$set": idempotency.Kept.of(response).to_record()}, session=session
        )
        return response
