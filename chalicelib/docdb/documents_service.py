"""One document by ``_id``: read, replace, update and delete, each conditional on its ETag.

These are CollectionService's one-document methods.  A condition on a
revision goes into the write's own filter, so comparing and writing are one
server operation and, of concurrent writers holding the same ETag, exactly
one wins.

When a conditional PATCH or DELETE matches nothing, the document is read to
tell 404 (absent) from 412 (present, other revision).  The answer describes
the state at that read, which lies within the request, so it is a correct
answer for the request at that moment; and since revisions are never reused,
a document that did not match cannot match later through this API.  If it
does (a writer outside the API put an old revision back), the write is tried
again instead of answering.

Conditions that name a digest (a document written outside the API), or that
a filter on ``_rev`` cannot express (``If-None-Match`` with tags on a write,
both headers at once), read the document, decide in Python, and write with a
filter that matches only the state that was read (:func:`revision.exact_state`):
a change in between makes the write miss and the loop reads again.

Every write method takes ``session`` and passes it to each driver call, so a
caller can run it inside a transaction.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import etags
from chalicelib.docdb import encoding, revision
from chalicelib.docdb.revision import REV
from chalicelib.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from chalicelib.paging import MAX_PAGE_BYTES

if TYPE_CHECKING:
    from bson.raw_bson import RawBSONDocument

    from chalicelib.docdb.client import DocdbConnection

MAX_ATTEMPTS = 4  # reads and conditional writes before giving up on a document that keeps changing


@dataclass
class Tagged:
    """A document as stored (without ``_rev``), its ETag's opaque value, and whether the write created it."""

    etag: str
    document: dict[str, Any] | None = None
    created: bool = False


def _unknown_outcome(what: str, advice: str, session: Any) -> contextlib.AbstractContextManager[None]:
    """A lost reply outside a transaction leaves the outcome unknown (503, say so).

    Inside one (a keyed write) nothing commits before the commit itself, so
    the error passes through to the transaction, which answers for it.
    """
    from chalicelib.docdb.service import _lost_write  # service imports this module

    return contextlib.nullcontext() if session is not None else _lost_write(what, advice)


def _raw_collection(client: Any, database: str, collection: str) -> Any:
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    return client[database].get_collection(collection, codec_options=CodecOptions(document_class=RawBSONDocument))


def _not_found(doc_id: Any) -> NotFoundError:
    return NotFoundError(f"no document with _id {encoding.dumps(doc_id).decode()[:200]}")


def _on_id(exc: Any) -> bool:
    """Whether a duplicate key error is about ``_id`` (a concurrent create), not another unique index."""
    pattern = (exc.details or {}).get("keyPattern")
    if isinstance(pattern, dict):
        return list(pattern) == ["_id"]
    return "_id_ dup key" in str(exc)


def _fast_filter(doc_id: Any, conditions: etags.Preconditions) -> dict[str, Any] | None:
    """The condition as a filter on ``_id`` and ``_rev``, or None when it needs the slow path."""
    if conditions.if_none_match is not None:
        return None
    if conditions.if_match is None or conditions.if_match == etags.ANY:
        return {"_id": doc_id}
    candidates = conditions.strong_match_candidates() or []
    if any(revision.is_digest(tag) for tag in candidates):
        return None
    revisions = [rev for rev in map(revision.revision_in, candidates) if rev is not None]
    return {"_id": doc_id, REV: {"$in": revisions}}


class DocumentMethods:
    """GET, PUT, PATCH and DELETE of one document (mixed into CollectionService)."""

    _connection: DocdbConnection

    def _current(
        self, coll: Any, doc_id: Any, session: Any
    ) -> tuple[RawBSONDocument | None, dict[str, Any], str | None]:
        raw = coll.find_one({"_id": doc_id}, session=session)
        if raw is None:
            return None, {}, None
        document = encoding.decode_document(raw)
        return raw, document, revision.etag_of(document, raw)

    def get_document(
        self,
        database: str,
        collection: str,
        doc_id: Any,
        projection: dict[str, Any] | None,
        conditions: etags.Preconditions,
        session: Any = None,
    ) -> Tagged:
        """The document and its ETag; raises etags.NotModified, 412 or 404 as the conditions say.

        With a projection, the projected read is filtered on the exact state
        whose ETag is returned, so the two always belong together.
        """

        def operation(client: Any) -> Tagged:
            coll = _raw_collection(client, database, collection)
            for _ in range(MAX_ATTEMPTS):
                raw, document, etag = self._current(coll, doc_id, session)
                if raw is None or etag is None:
                    raise _not_found(doc_id)
                conditions.check_read(etag)
                if projection is None:
                    return Tagged(etag, revision.strip(document))
                projected = coll.find_one(revision.exact_state(doc_id, document, raw), projection, session=session)
                if projected is not None:
                    return Tagged(etag, revision.strip(encoding.decode_document(projected)))
            raise ServiceUnavailableError("the document kept changing while it was read; try again")

        return self._connection.run(operation)

    def replace_document(
        self,
        database: str,
        collection: str,
        doc_id: Any,
        body: dict[str, Any],
        conditions: etags.Preconditions,
        session: Any = None,
    ) -> Tagged:
        """Replace (or create) the document; 412 when the conditions do not hold."""
        from pymongo.errors import DuplicateKeyError


        rev = revision.new_revision()
        replacement = {"_id": doc_id, **{k: v for k, v in body.items() if k != "_id"}, REV: rev}
        advice = "the document may or may not have been replaced; read it before retrying"
        fast = _fast_filter(doc_id, conditions)
        create_only = conditions.if_match is None and conditions.if_none_match == etags.ANY

        def operation(client: Any) -> Tagged:
            coll = _raw_collection(client, database, collection)
            for _ in range(MAX_ATTEMPTS):
                with _unknown_outcome("replace", advice, session):
                    try:
                        if create_only:
                            coll.insert_one(replacement, session=session)
                            return self._written(replacement, created=True)
                        if fast is not None:
                            before = coll.find_one_and_replace(
                                fast, replacement, projection={"_id": 1}, upsert=conditions.none, session=session
                            )
                            if before is None and not conditions.none:
                                raise etags.failed("the document")
                            return self._written(replacement, created=before is None)
                        raw, document, etag = self._current(coll, doc_id, session)
                        if not conditions.allows_write(etag):
                            raise etags.failed("the document")
                        if raw is None:
                            coll.insert_one(replacement, session=session)
                            return self._written(replacement, created=True)
                        if coll.find_one_and_replace(
                            revision.exact_state(doc_id, document, raw), replacement, projection={"_id": 1},
                            session=session,
                        ) is not None:
                            return self._written(replacement, created=False)
                    except DuplicateKeyError as exc:
                        if not _on_id(exc):
                            raise  # another unique index: a 409, as for inserts
                        # Created by someone else in between: a create-only write has lost;
                        # an upsert or a slow-path insert looks again.
                        if create_only:
                            raise etags.failed("the document") from None
            raise etags.failed("the document kept changing")

        return operation(session.client) if session is not None else self._connection.run(operation, write=True)

    def update_document(
        self,
        database: str,
        collection: str,
        doc_id: Any,
        update: dict[str, Any] | list[dict[str, Any]],
        conditions: etags.Preconditions,
        session: Any = None,
    ) -> Tagged:
        """Apply ``update`` to the document; the updated document, 404 when absent, 412 on a failed condition."""
        from pymongo import ReturnDocument

        rev = revision.new_revision()
        change = revision.with_revision(update, rev)
        advice = "the update may or may not have been applied; read the document before retrying"
        fast = _fast_filter(doc_id, conditions)

        def operation(client: Any) -> Tagged:
            coll = _raw_collection(client, database, collection)
            for _ in range(MAX_ATTEMPTS):
                flt = fast if fast is not None else self._exact_filter(coll, doc_id, conditions, session)
                with _unknown_outcome("update", advice, session):
                    after = coll.find_one_and_update(
                        flt, change, return_document=ReturnDocument.AFTER, session=session
                    )
                if after is not None:
                    return Tagged(revision.etag_of_revision(rev), revision.strip(encoding.decode_document(after)))
                if fast is not None:
                    self._after_miss(coll, doc_id, conditions, session)
            raise etags.failed("the document kept changing")

        return operation(session.client) if session is not None else self._connection.run(operation, write=True)

    def delete_document(
        self,
        database: str,
        collection: str,
        doc_id: Any,
        conditions: etags.Preconditions,
        session: Any = None,
    ) -> None:
        """Delete the document; 404 when absent, 412 on a failed condition."""

        advice = "the delete may or may not have been applied; read the document before retrying"
        fast = _fast_filter(doc_id, conditions)

        def operation(client: Any) -> None:
            coll = _raw_collection(client, database, collection)
            for _ in range(MAX_ATTEMPTS):
                flt = fast if fast is not None else self._exact_filter(coll, doc_id, conditions, session)
                with _unknown_outcome("delete", advice, session):
                    deleted = coll.delete_one(flt, session=session).deleted_count
                if deleted:
                    return
                if fast is not None:
                    self._after_miss(coll, doc_id, conditions, session)
            raise etags.failed("the document kept changing")

        operation(session.client) if session is not None else self._connection.run(operation, write=True)

    def _exact_filter(self, coll: Any, doc_id: Any, conditions: etags.Preconditions, session: Any) -> dict[str, Any]:
        """For a digest ETag: the document as read must satisfy the conditions (else 404/412),
        and the write then matches only that exact state."""
        raw, document, etag = self._current(coll, doc_id, session)
        self._require(doc_id, raw, etag, conditions)
        assert raw is not None
        return revision.exact_state(doc_id, document, raw)

    def _require(self, doc_id: Any, raw: Any, etag: str | None, conditions: etags.Preconditions) -> None:
        # RFC 9110 13.2.1: an absent document is a 404 whatever the conditions say,
        # since the request would fail without them too.
        if raw is None:
            raise _not_found(doc_id)
        if not conditions.allows_write(etag):
            raise etags.failed("the document")

    def _after_miss(self, coll: Any, doc_id: Any, conditions: etags.Preconditions, session: Any) -> None:
        """A fast conditional write matched nothing: 404 or 412 from the state now, or return to try again."""
        raw, _, etag = self._current(coll, doc_id, session)
        self._require(doc_id, raw, etag, conditions)

    @staticmethod
    def _written(replacement: dict[str, Any], created: bool) -> Tagged:
        document = dict(replacement)
        rev = document.pop(REV)
        return Tagged(revision.etag_of_revision(rev), document, created)


def check_response_size(body: bytes, limit: int = MAX_PAGE_BYTES) -> None:
    if len(body) > limit:
        raise BadRequestError(
            f"the document is larger than the {limit} byte response limit; use projection to return fewer fields"
        )
