"""The revision kept in every document this API writes, and the ETag made from it.

Every write through the API (insert, PATCH by filter, PUT/PATCH of one
document) stores a fresh ObjectId in the top-level field ``_rev``.  A
conditional write names the revision it expects in its filter, so the
comparison and the write are one server operation.  ObjectIds are never
reused, so a revision that no longer matches never matches again.

``_rev`` is reserved: a document or update that sets, renames or unsets it is
a 400, and responses never show it.  Documents written outside the API have
no revision; their ETag is a digest of their stored BSON, and a conditional
write against one checks the whole stored document in its filter instead
(see :func:`exact_state`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from bson import ObjectId
from bson.raw_bson import RawBSONDocument

from chalicelib.errors import BadRequestError

REV = "_rev"
_REV_TAG = "r"  # "r" + 24 hex digits: a revision
_HASH_TAG = "h"  # "h" + 32 hex digits: the digest of a document without one
_HEX = frozenset("0123456789abcdef")


def new_revision() -> ObjectId:
    return ObjectId()


def etag_of(document: dict[str, Any], raw: RawBSONDocument | bytes) -> str:
    """The opaque ETag value of a stored document (``document`` is its decoded form)."""
    rev = document.get(REV)
    if type(rev) is ObjectId:
        return _REV_TAG + str(rev)
    data = raw.raw if isinstance(raw, RawBSONDocument) else raw
    return _HASH_TAG + hashlib.sha256(data).hexdigest()[:32]


def etag_of_revision(rev: ObjectId) -> str:
    return _REV_TAG + str(rev)


def revision_in(opaque: str) -> ObjectId | None:
    """The revision an ETag names, or None when it names none (a digest, or a tag we never issued)."""
    if len(opaque) == 25 and opaque[0] == _REV_TAG and set(opaque[1:]) <= _HEX:
        return ObjectId(opaque[1:])
    return None


def is_digest(opaque: str) -> bool:
    return len(opaque) == 33 and opaque[0] == _HASH_TAG and set(opaque[1:]) <= _HEX


def exact_state(doc_id: Any, document: dict[str, Any], raw: RawBSONDocument) -> dict[str, Any]:
    """A filter matching this document only while it is exactly as read.

    A revision identifies the state by itself; a document without one is
    matched whole (``$$ROOT`` equal to what was read), so a conditional write
    checked against its digest still cannot land on a document that changed
    in between: the write's own filter fails and the caller reads again.
    """
    rev = document.get(REV)
    if type(rev) is ObjectId:
        return {"_id": doc_id, REV: rev}
    return {"_id": doc_id, "$expr": {"$eq": ["$$ROOT", {"$literal": raw}]}}


def with_revision(update: dict[str, Any] | list[dict[str, Any]], rev: ObjectId) -> Any:
    """``update`` that also stores ``rev`` (an update document or a pipeline)."""
    if isinstance(update, list):
        return [*update, {"$set": {REV: {"$literal": rev}}}]
    return {**update, "$set": {**update.get("$set", {}), REV: rev}}


def strip(document: dict[str, Any]) -> dict[str, Any]:
    document.pop(REV, None)
    return document


# --- the reserved field in what clients send -----------------------------------


def _refuse(where: str) -> BadRequestError:
    return BadRequestError(f"{where} touches {REV}, which this API keeps itself (it backs ETags); leave it out")


def _touches(path: Any) -> bool:
    return isinstance(path, str) and path.split(".", 1)[0] == REV


def check_document(document: dict[str, Any], where: str) -> None:
    """400 when a document to store sets ``_rev``."""
    if REV in document:
        raise _refuse(where)


def check_update(update: dict[str, Any] | list[Any]) -> None:
    """400 when an update (operators or pipeline) sets, renames or unsets ``_rev``."""
    if isinstance(update, list):
        for index, stage in enumerate(update):
            for name, spec in stage.items():
                names = [spec] if isinstance(spec, str) else spec
                if any(_touches(field) for field in names):
                    raise _refuse(f"update[{index}].{name}")
        return
    for operator, fields in update.items():
        for field, value in fields.items():
            if _touches(field) or (operator == "$rename" and _touches(value)):
                raise _refuse(f"update.{operator}")
