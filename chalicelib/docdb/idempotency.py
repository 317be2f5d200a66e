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
  matches) or fails without changing anything (a 503: the time limit, a
  connection lost before the commit, conflicts that did not clear), the
  transaction is abandoned and the record is looked up, so a repeat of an
  applied write still answers the kept response.

A replay therefore runs the write again inside a transaction that is never
committed: nothing it does is applied or seen by anyone, but it costs what
the write costs and holds its documents meanwhile.  The record is written
last because only then is the response known; writing it first would cost a
fourth command (the record, the write, the response, the commit).

Except after a conflict: a repeat whose write meets the first request's
uncommitted write (the same documents, before the first has written its
record) conflicts before it reaches the record, so when the transaction runs
again it claims the key first (the record, the write, the response, the
commit).  If its write still conflicts on every attempt, the answer is 409
(most likely the first request with the key, still writing).  Between two
requests with one key that are both in flight, the one whose record is
written first is the one that runs: the other is a 409 and is rolled back.

The first keyed write to a collection in a container looks for the key's
record before making sure the collection exists (DocumentDB cannot create
one inside a transaction), so a replay or a 422 creates nothing.

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
from chalicelib.docdb.client import DUPLICATE_KEY, DocdbConnection, refuses_the_request
from chalicelib.docdb.transaction import WRITE_CONFLICT, Namespaces
from chalicelib.errors import ChaliceViewError, ServiceUnavailableError, WriteOutcomeUnknownError

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


class _Attempts:
    """What a keyed write's transaction has met so far: after a conflict, the key is claimed first."""

    __slots__ = ("claim_first",)

    def __init__(self) -> None:
        self.claim_first = False


class MongoRecords:
    """The records of keyed writes on one target collection (:class:`idempotency.Records`)."""

    def __init__(self, connection: DocdbConnection, namespaces: Namespaces, target: tuple[str, str]) -> None:
        self._connection = connection
        self._namespaces = namespaces
        self._target = target

    def execute(self, claim: idempotency.Claim, run: idempotency.Run) -> Response:
        advice = idempotency.unknown_outcome_advice(keyed=True)

        def operation(client: Any) -> Response:
            records = client[DATABASE][COLLECTION]
            if not self._namespaces.known(*self._target):
                kept = _kept_answer(records, claim)  # before the target is created: a replay creates nothing
                if kept is not None:
                    return kept
            self._prepare(client)
            attempts = _Attempts()
            # Twice at most: the second pass follows the removal of an expired record.
            for _ in range(2):
                refused: _Refused | None = None
                failed: ServiceUnavailableError | None = None
                try:
                    return transaction.run(client, lambda session: _run_and_keep(session, claim, run, attempts),
                                           "write", advice, self._connection.journal_after_commit)  # fmt: skip
                except _InFlight:
                    return idempotency.in_flight()
                except _Refused as exc:
                    refused = exc
                except _Kept:
                    pass
                except WriteOutcomeUnknownError:
                    raise  # the record may have committed with the write: the client's retry finds out
                except ServiceUnavailableError as exc:
                    # Nothing of this attempt was applied (time limit, lost connection before the commit,
                    # conflicts that did not clear); a repeat of a kept write still answers what it kept.
                    failed = exc
                kept = _kept_answer(records, claim)
                if kept is not None:
                    return kept
                if refused is not None:
                    return refused.answer()
                if isinstance(failed, transaction.ConflictsPersisted) and attempts.claim_first:
                    # Its write kept meeting another's uncommitted write, most likely the first
                    # request with this key, still writing before its record.
                    return idempotency.in_flight()
                if failed is not None:
                    raise failed
                # else the record expired or was swept meanwhile: run the write
            return idempotency.in_flight()  # a record kept reappearing: let the client come back

        return self._connection.run(operation, write=True)

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


def _kept_answer(records: Any, claim: idempotency.Claim) -> Response | None:
    """The answer from the key's committed record (a replay or a 422), or None; an expired record is removed."""
    existing = records.find_one({"_id": claim.id})
    if existing is None:
        return None
    if _epoch(existing["expires_at"]) <= claim.now:  # the sweeper has not got to it yet
        records.delete_one({"_id": claim.id, "expires_at": existing["expires_at"]})
        return None
    return idempotency.answer_kept(claim, existing["fingerprint"], idempotency.Kept.from_record(existing))


def _run_and_keep(session: Any, claim: idempotency.Claim, run: idempotency.Run, attempts: _Attempts) -> Response:
    """The write, then its record with the response (or, after a conflict, the record first)."""
    records = session.client[DATABASE][COLLECTION]
    if attempts.claim_first:
        _insert_record(records, session, claim, {})
    response = _run(session, run, attempts)
    if not idempotency.keeps(response):
        raise _Refused(response=response)
    kept = idempotency.Kept.of(response).to_record()
    if attempts.claim_first:
        records.update_one({"_id": claim.id}, {"$set": kept}, session=session)
    else:
        _insert_record(records, session, claim, kept)
    return response


def _run(session: Any, run: idempotency.Run, attempts: _Attempts) -> Response:
    """``run(session)``; what refuses the request becomes :class:`_Refused`, and a conflict claims first next time."""
    from pymongo.errors import OperationFailure

    try:
        return run(session)
    except ChaliceViewError as exc:
        if exc.STATUS_CODE >= 500:
            raise
        raise _Refused(error=exc) from None
    except OperationFailure as exc:
        if exc.has_error_label("TransientTransactionError"):
            attempts.claim_first = True
            raise  # the transaction runs again
        if not refuses_the_request(exc):
            raise  # a time limit, a busy server: the transaction's and the connection's own answers
        raise _Refused(error=exc) from None


def _insert_record(records: Any, session: Any, claim: idempotency.Claim, kept: dict[str, Any]) -> None:
    from pymongo.errors import OperationFailure

    record = {
        "_id": claim.id,
        "scope": claim.scope,
        "key": claim.key,
        "fingerprint": claim.fingerprint,
        "created_at": _utc(claim.now),
        "expires_at": _utc(claim.expires_at),
        **kept,
    }
    try:
        records.insert_one(record, session=session)
    except OperationFailure as exc:
        if exc.code == DUPLICATE_KEY:
            raise _Kept from None
        if exc.code == WRITE_CONFLICT:
            raise _InFlight from None
        raise
