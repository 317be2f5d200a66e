"""One DocumentDB transaction around a write: all of it applied, or none of it.

Used for every multi-document insert and update (a refused batch changes
nothing, so a partial insert cannot exist) and for every keyed write (the
write and its idempotency record commit together).

What a failure means here is exact, which is the point: until
``commitTransaction`` is sent nothing can have been applied, so a lost
connection or a time limit before it is a plain 503 "nothing was changed";
only a commit whose answer is lost leaves the outcome unknown
(:class:`~chalicelib.errors.WriteOutcomeUnknownError`).  DocumentDB does not
support retryable commits, so any failure of the commit, even a definite-
looking one from the driver's own retry, is treated as unknown.

DocumentDB cannot create a collection inside a transaction, so the target is
created (if missing) just before, once per collection per container.  The
transaction uses the client's write concern (no weaker override).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib.errors import ServiceUnavailableError, WriteOutcomeUnknownError

log = logging.getLogger(__name__)
T = TypeVar("T")

NAMESPACE_EXISTS = 48
WRITE_CONFLICT = 112
ATTEMPTS = 3  # a transaction that conflicts with another writer is run again from the start, this often

# The API's own reserved database: idempotency records (chalicelib/docdb/idempotency.py) and journal flushes.
JOURNAL_DATABASE = "_docdb_rest"


class Namespaces:
    """The collections this container has made sure exist."""

    def __init__(self) -> None:
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def ensure(self, client: Any, database: str, collection: str) -> None:
        """Create ``database.collection`` unless it exists (one round trip, the first time only)."""
        if (database, collection) in self._known:
            return
        from pymongo.errors import OperationFailure

        try:
            client[database].command("create", collection)
        except OperationFailure as exc:
            if exc.code != NAMESPACE_EXISTS:
                raise
        with self._lock:
            self._known.add((database, collection))

    def known(self, database: str, collection: str) -> bool:
        return (database, collection) in self._known

    def forget(self) -> None:
        with self._lock:
            self._known.clear()


class ConflictsPersisted(ServiceUnavailableError):
    """Every attempt met another writer's uncommitted change: nothing was changed (a 503 like any other)."""


# The caller sees the contract's Code, as for every 503 that is not WriteOutcomeUnknown.
ConflictsPersisted.__name__ = ConflictsPersisted.__qualname__ = "ServiceUnavailableError"


def run(client: Any, body: Callable[[Any], T], what: str, advice: str, journal_after_commit: bool = False) -> T:
    """``body(session)`` inside one transaction, committed only if it returns.

    ``advice`` tells the caller what to do when the commit's answer is lost.
    Anything ``body`` raises aborts the transaction and passes through (the
    connection's error mapping turns driver errors into HTTP errors), except
    as follows: a lost connection or time limit before the commit is a 503
    saying nothing changed; a conflict with another writer runs ``body``
    again, up to :data:`ATTEMPTS` times.
    """
    from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

    for attempt in range(1, ATTEMPTS + 1):
        with client.start_session() as session:
            session.start_transaction()
            try:
                result = body(session)
            except ConnectionFailure as exc:
                _abort(session)
                log.warning("connection lost during a %s, before its commit: %s", what, type(exc).__name__)
                raise ServiceUnavailableError(
                    f"the connection to the database was lost during the {what}; nothing was changed; try again"
                ) from None
            except ExecutionTimeout:
                _abort(session)
                log.warning("a %s ran out of time on the server before its commit", what)
                raise ServiceUnavailableError(
                    f"the {what} ran out of time on the database; nothing was changed"
                ) from None
            except OperationFailure as exc:
                _abort(session)
                if not exc.has_error_label("TransientTransactionError"):
                    raise
                if attempt == ATTEMPTS:
                    log.warning("a %s kept conflicting with other writes (code %s)", what, exc.code)
                    raise ConflictsPersisted(
                        f"other writes to the same documents kept conflicting with the {what}; "
                        "nothing was changed; try again"
                    ) from None
                continue
            except BaseException:
                _abort(session)
                raise
            try:
                session.commit_transaction()
                if journal_after_commit:
                    _flush_journal(client)
            except PyMongoError as exc:
                log.warning("the commit of a %s failed, outcome unknown: %s", what, type(exc).__name__)
                raise WriteOutcomeUnknownError(
                    f"the database's answer to the {what} was lost; it may or may not have been applied; {advice}"
                ) from None
            return result
    raise AssertionError("unreachable")


def _flush_journal(client: Any) -> None:
    """One journaled write after a commit, for a server that acknowledges commits before its journal is on disk.

    The journal is written in order, so once this write is on disk the commit
    before it is too.  Until it answers, the commit's durability is unknown.
    """
    from pymongo import WriteConcern

    flushes = client[JOURNAL_DATABASE].get_collection("journal", write_concern=WriteConcern(w="majority", j=True))
    flushes.update_one({"_id": "flush"}, {"$inc": {"n": 1}}, upsert=True)


def _abort(session: Any) -> None:
    """Abort now rather than when the session ends, so locks (and a claimed key) go at once."""
    with contextlib.suppress(Exception):  # the driver ignores abort errors by design; so does this
        if session.in_transaction:
            session.abort_transaction()
