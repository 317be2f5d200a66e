"""The collection service: find, insert, update, replace and delete on one collection."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from chalicelib.docdb import encoding
from chalicelib.docdb.client import DUPLICATE_KEY, MAX_TIME_MS, DocdbConnection, refusal
from chalicelib.docdb.documents_service import DocumentMethods
from chalicelib.docdb.query import AggregateSpec, FindSpec, UpdateSpec
from chalicelib.docdb.revision import REV, new_revision, with_revision
from chalicelib.errors import BadRequestError, ConflictError, WriteOutcomeUnknownError
from chalicelib.idempotency import HEADER
from chalicelib.paging import MAX_PAGE_BYTES, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

_RAW_DOCUMENTS = CodecOptions(document_class=RawBSONDocument)
CURSOR_KIND = "docdb"
T = TypeVar("T")


@dataclass
class Page:
    body: bytes | bytearray  # a JSON array, already encoded
    next_token: str | None
    total: int | None


class CollectionService(DocumentMethods):
    """Runs each request as one driver call on ``database.collection``.

    Every write stores a new revision (``_rev``) in what it writes, and no
    response shows it; the one-document methods come from DocumentMethods.
    """

    def __init__(self, connection: DocdbConnection, max_response_bytes: int = MAX_PAGE_BYTES) -> None:
        from chalicelib.docdb.transaction import Namespaces

        self._connection = connection
        self._max_bytes = max_response_bytes
        self._namespaces = Namespaces()

    def close(self) -> None:
        """Close the database client (the next call builds a new one)."""
        self._connection.close()

    def find(self, database: str, collection: str, spec: FindSpec) -> Page:
        """A page of documents in a stable order, cut short before 5 MB.

        The order always ends with ``_id``, so skipping by position walks
        every matching document exactly once.
        """
        sort = spec.sort if any(k == "_id" for k, _ in spec.sort) else [*spec.sort, ("_id", 1)]
        query_id = _query_id(database, collection, spec.filter, spec.projection, sort)
        offset = self._offset(spec.cursor, spec.skip, query_id)

        def operation(client: Any) -> Page:
            # Raw documents stay undecoded in the driver's batch; _fill_page
            # decodes each just before writing it, so a page of 1000 never holds
            # 1000 decoded documents (several times their JSON) at once.
            coll = client[database].get_collection(collection, codec_options=_RAW_DOCUMENTS)
            cursor = coll.find(
                spec.filter,
                spec.projection,
                sort=sort,
                skip=offset,
                limit=spec.limit + 1,  # one more tells whether a next page exists
                batch_size=spec.limit + 1,
                max_time_ms=MAX_TIME_MS,
            )
            body, count, more = self._fill_page(cursor, spec.limit)
            total = coll.count_documents(spec.filter, maxTimeMS=MAX_TIME_MS) if spec.count else None
            token = self._cursor(o=offset + count, q=query_id) if more else None
            return Page(body, token, total)

        return self._connection.run(operation)

    def insert(
        self, database: str, collection: str, documents: list[dict[str, Any]], session: Any = None
    ) -> list[dict[str, Any]]:
        """Insert all of ``documents`` or none of them; returns them with their ``_id``.

        More than one document go in one transaction, so a refused batch
        changes nothing.  With ``session`` (a keyed write) the insert joins
        that session's transaction instead.
        """
        from bson import ObjectId

        rev = new_revision()
        for document in documents:
            document.setdefault("_id", ObjectId())
            document[REV] = rev
        if session is not None:
            try:
                _insert(session.client[database][collection], documents, session)
            finally:
                # Also when the transaction is to run again: a caller that checks the documents
                # on every run (the Data API's actions) must not find the revision in them.
                _without_revision(documents)
            return documents
        if len(documents) > 1:
            return _without_revision(self.transaction(
                database, collection, lambda s: _insert(s.client[database][collection], documents, s), "insert"
            ))
        first_id = encoding.dumps(documents[0]["_id"]).decode()
        unknown = f"the document may or may not have been stored; look it up by _id {first_id} before retrying"

        def operation(client: Any) -> list[dict[str, Any]]:
            with _lost_write("insert", unknown, one_document=True):
                client[database][collection].insert_one(documents[0])
            return _without_revision(documents)

        return self._connection.run(operation, write=True)

    def update(self, database: str, collection: str, spec: UpdateSpec, session: Any = None) -> dict[str, Any]:
        """Update every matching document in one transaction: all of them, or (refused) none."""
        if session is not None:
            return _update(session.client[database][collection], spec, session)
        return self.transaction(database, collection, lambda s: _update(s.client[database][collection], spec, s),
                                "update")  # fmt: skip

    def delete(self, database: str, collection: str, flt: dict[str, Any], session: Any = None) -> dict[str, int]:
        if session is not None:
            deleted = session.client[database][collection].delete_many(flt, session=session).deleted_count
            return {"deleted_count": deleted}

        def operation(client: Any) -> dict[str, int]:
            with _lost_write("delete", "the delete may or may not have been applied; read before retrying"):
                return {"deleted_count": client[database][collection].delete_many(flt).deleted_count}

        return self._connection.run(operation, write=True)

    def transaction(self, database: str, collection: str, body: Callable[[Any], T], what: str) -> T:
        """``body(session)`` in one transaction on ``database.collection`` (created first if missing)."""
        from chalicelib.docdb import transaction
        from chalicelib.idempotency import unknown_outcome_advice

        def operation(client: Any) -> T:
            self._namespaces.ensure(client, database, collection)
            return transaction.run(client, body, what, unknown_outcome_advice(keyed=False),
                                   journal_after_commit=self._connection.journal_after_commit)  # fmt: skip

        return self._connection.run(operation, write=True)

    def records(self, database: str, collection: str) -> Any:
        """The idempotency records of keyed writes on ``database.collection``."""
        from chalicelib.docdb.idempotency import MongoRecords

        return MongoRecords(self._connection, self._namespaces, (database, collection))

    def aggregate(self, database: str, collection: str, spec: AggregateSpec) -> Page:
        """A page of an aggregation's results, cut short before the response budget.

        The page is the validated pipeline followed by ``$skip`` and
        ``$limit``; when it ends with a ``$sort``, ``_id`` is added as its last
        key (as find does), so walking the pages yields every result once.
        """
        pipeline = [dict(stage) for stage in spec.pipeline]
        if pipeline and "$sort" in pipeline[-1] and "_id" not in pipeline[-1]["$sort"]:
            pipeline[-1] = {"$sort": {**pipeline[-1]["$sort"], "_id": 1}}
        query_id = _query_id(database, collection, spec.pipeline)
        offset = self._offset(spec.cursor, 0, query_id)
        pipeline += [*([{"$skip": offset}] if offset else []), {"$limit": spec.limit + 1}]

        def operation(client: Any) -> Page:
            coll = client[database].get_collection(collection, codec_options=_RAW_DOCUMENTS)
            cursor = coll.aggregate(pipeline, allowDiskUse=False, maxTimeMS=MAX_TIME_MS, batchSize=spec.limit + 1)
            body, count, more = self._fill_page(cursor, spec.limit)
            token = self._cursor(o=offset + count, q=query_id) if more else None
            return Page(body, token, None)

        return self._connection.run(operation)

    def _fill_page(self, cursor: Any, limit: int) -> tuple[bytearray, int, bool]:
        """Up to ``limit`` documents of ``cursor`` as a JSON array, and whether more follow."""
        with cursor:
            documents = iter(cursor)
            # The revision behind ETags is never shown, whichever route reads the document.
            body, count, cut = encoding.encode_page(islice(documents, limit), self._max_bytes, drop=REV)
            more = cut or (count == limit and next(documents, None) is not None)
        if cut and count == 0:
            raise BadRequestError(
                f"a matching document is larger than the {self._max_bytes} byte response limit; "
                "use projection to return fewer fields"
            )
        return body, count, more
    # --- single-document and streaming variants (the Data API's actions) ----

    def find_one(
        self, database: str, collection: str, flt: dict[str, Any], projection: dict[str, Any] | None
    ) -> RawBSONDocument | None:
        """The first matching document, undecoded, or None."""

        def operation(client: Any) -> RawBSONDocument | None:
            coll = client[database].get_collection(collection, codec_options=_RAW_DOCUMENTS)
            return coll.find_one(flt, projection, max_time_ms=MAX_TIME_MS)

        return self._connection.run(operation)

    def find_each(
        self, database: str, collection: str, spec: FindSpec, consume: Callable[[Iterator[RawBSONDocument]], T]
    ) -> T:
        """``consume`` run over the matching documents (undecoded), in the spec's order.

        No cursor, no added ``_id`` order: ``consume`` decides how much it takes
        and raises to refuse the rest.  ``spec.limit`` bounds what is fetched.
        """

        def operation(client: Any) -> T:
            coll = client[database].get_collection(collection, codec_options=_RAW_DOCUMENTS)
            cursor = coll.find(
                spec.filter, spec.projection, sort=spec.sort or None, skip=spec.skip, limit=spec.limit,
                max_time_ms=MAX_TIME_MS,
            )  # fmt: skip
            with cursor:
                return consume(iter(cursor))

        return self._connection.run(operation)

    def update_one(self, database: str, collection: str, spec: UpdateSpec, session: Any = None) -> dict[str, Any]:
        update = with_revision(spec.update, new_revision())
        if session is not None:  # a keyed write: one step of its transaction
            coll = session.client[database][collection]
            return _update_result(coll.update_one(spec.filter, update, upsert=spec.upsert, session=session))

        def operation(client: Any) -> dict[str, Any]:
            with _lost_write("update", "the update may or may not have been applied; read before retrying"):
                result = client[database][collection].update_one(spec.filter, update, upsert=spec.upsert)
            return _update_result(result)

        return self._connection.run(operation, write=True)

    def replace_one(
        self,
        database: str,
        collection: str,
        flt: dict[str, Any],
        replacement: dict[str, Any],
        upsert: bool,
        session: Any = None,
    ) -> dict[str, Any]:
        stored = {**replacement, REV: new_revision()}
        if session is not None:
            coll = session.client[database][collection]
            return _update_result(coll.replace_one(flt, stored, upsert=upsert, session=session))

        def operation(client: Any) -> dict[str, Any]:
            with _lost_write("replace", "the replace may or may not have been applied; read before retrying"):
                result = client[database][collection].replace_one(flt, stored, upsert=upsert)
            return _update_result(result)

        return self._connection.run(operation, write=True)

    def delete_one(self, database: str, collection: str, flt: dict[str, Any], session: Any = None) -> dict[str, int]:
        if session is not None:
            deleted = session.client[database][collection].delete_one(flt, session=session).deleted_count
            return {"deleted_count": deleted}

        def operation(client: Any) -> dict[str, int]:
            with _lost_write("delete", "the delete may or may not have been applied; read before retrying"):
                return {"deleted_count": client[database][collection].delete_one(flt).deleted_count}

        return self._connection.run(operation, write=True)

    def _cursor(self, **fields: Any) -> str:
        return encode_cursor(CURSOR_KIND, self._connection.cursor_key(), **fields)

    def _offset(self, cursor: str | None, start: int, query_id: str) -> int:
        if cursor is None:
            return start
        data = decode_cursor(cursor, CURSOR_KIND, self._connection.cursor_key())
        offset = data.get("o")
        if data.get("q") != query_id or type(offset) is not int or not 0 <= offset < 2**31:
            raise BadRequestError("next is not a cursor this query issued; start again without it")
        return offset


def _insert(coll: Any, documents: list[dict[str, Any]], session: Any) -> list[dict[str, Any]]:
    """The insert inside a transaction: a refused document aborts it, so nothing is inserted."""
    from pymongo.errors import BulkWriteError

    if len(documents) == 1:
        coll.insert_one(documents[0], session=session)
        return documents
    try:
        coll.insert_many(documents, ordered=True, session=session)
    except BulkWriteError as exc:
        first = (exc.details.get("writeErrors") or [{}])[0]
        index = first.get("index", "?")
        if first.get("code") == DUPLICATE_KEY:
            raise ConflictError(f"document {index} has an _id that exists already; nothing was inserted") from None
        reason = refusal(first.get("code"), first.get("codeName"))
        raise BadRequestError(f"document {index} was refused: {reason}; nothing was inserted") from None
    return documents


def _update(coll: Any, spec: UpdateSpec, session: Any) -> dict[str, Any]:
    update = with_revision(spec.update, new_revision())  # every write changes the documents' ETags
    result = coll.update_many(spec.filter, update, upsert=spec.upsert, session=session)
    return {"matched_count": result.matched_count, "modified_count": result.modified_count,
            "upserted_id": result.upserted_id}  # fmt: skip


@contextlib.contextmanager
def _lost_write(what: str, advice: str, one_document: bool = False) -> Iterator[None]:
    """A connection lost once a write may have been sent: its outcome is unknown.

    The server may have applied the write and lost only the reply, so this is
    neither a success nor a clean failure, and the caller is told so.  When
    nothing was sent (no server selected, no connection from the pool), or a
    one-document write was refused by a server that is not (or no longer) the
    primary, the error passes through as the database being unavailable.
    """
    from pymongo.errors import (
        ConnectionFailure,
        ExecutionTimeout,
        NotPrimaryError,
        ServerSelectionTimeoutError,
        WaitQueueTimeoutError,
    )

    try:
        yield
    except (ServerSelectionTimeoutError, WaitQueueTimeoutError):
        raise
    except NotPrimaryError:
        if one_document:  # refused, or interrupted before its one document was written: not applied
            raise
        log.warning("a %s was interrupted by a stepdown or shutdown, outcome unknown", what)
        raise WriteOutcomeUnknownError(f"the database was interrupted during the {what}; {advice}") from None
    except ConnectionFailure as exc:
        log.warning("connection lost during a %s, outcome unknown: %s", what, type(exc).__name__)
        raise WriteOutcomeUnknownError(
            f"the connection to the database was lost during the {what}; {advice}; "
            f"send an {HEADER} to make a retry safe"
        ) from None
    except ExecutionTimeout:
        # The server stopped the command at its time limit: a multi-document
        # write may have been applied in part.
        log.warning("a %s ran out of time on the server, outcome unknown", what)
        raise WriteOutcomeUnknownError(f"the {what} ran out of time on the database; {advice}") from None


def _update_result(result: Any) -> dict[str, Any]:
    return {
        "matched_count": result.matched_count,
        "modified_count": result.modified_count,
        "upserted_id": result.upserted_id,
    }
def _without_revision(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for document in documents:
        document.pop(REV, None)
    return documents


def _query_id(database: str, collection: str, *parts: Any) -> str:
    """A short digest tying a cursor to the query that issued it."""
    return hashlib.sha256(encoding.dumps([database, collection, *parts])).hexdigest()[:16]
