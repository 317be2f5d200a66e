"""Relaxed Extended JSON, both ways, through bson's json_util semantics.

Reading is :func:`json.loads` with bson's type wrappers recognised only in
their exact documented shapes (see :func:`loads`).  Writing uses orjson with a
``default`` hook: ObjectId and datetimes (nearly every document has them) take
a fast path, every other BSON type goes through ``json_util.default``, so the
output parses back to what ``json_util.dumps`` gives.  NaN and infinities come
out as ``null``: orjson has no hook for floats.

Pages also take undecoded documents (``RawBSONDocument``): each is decoded
just before it is written, so a page of 1000 never holds 1000 decoded
documents at once (they take several times the memory of their JSON).
"""

from __future__ import annotations

import datetime
import json
import logging
import math
from collections.abc import Iterable
from typing import Any

import orjson
from bson import Int64, ObjectId, decode, json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError
from bson.raw_bson import RawBSONDocument

from chalicelib.errors import InvalidValueError
from chalicelib.paging import MAX_PAGE_BYTES, PageBuffer

log = logging.getLogger(__name__)
RELAXED = json_util.RELAXED_JSON_OPTIONS
# How stored documents are decoded for a response: a date outside Python's
# datetime range stays a DatetimeMS (written as {"$date": {"$numberLong"}}),
# and invalid UTF-8 is replaced, so one odd document cannot break a page.
_DECODE: CodecOptions[dict[str, Any]] = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO, unicode_decode_error_handler="replace"
)
# Subclasses pass through too: bson's Code is a str and Int64 an int, and
# orjson would otherwise write them as plain values.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
_EPOCH = datetime.datetime(1970, 1, 1)
_UTC = datetime.UTC


def _default(obj: Any) -> Any:
    if type(obj) is ObjectId:
        return {"$oid": str(obj)}
    if type(obj) is datetime.datetime:
        if obj.tzinfo is not None:
            obj = obj.astimezone(_UTC).replace(tzinfo=None)
        if obj >= _EPOCH:
            return {"$date": obj.isoformat(timespec="milliseconds") + "Z"}
    if type(obj) is RawBSONDocument:
        return decode(obj.raw, _DECODE)
    if isinstance(obj, dict):  # SON and other mappings
        return dict(obj)
    if isinstance(obj, Int64):
        return int(obj)
    return json_util.default(obj, RELAXED)


def dumps(value: Any) -> bytes:
    """``value`` as relaxed Extended JSON bytes."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


# The exact key sets of the Extended JSON type wrappers this API reads.  An
# object is a BSON value only when its keys are exactly one of these; anything
# else stays a plain object, which the operator allowlist then walks.  bson's
# own hook is looser: any object holding a string "$regex" becomes a regular
# expression and loses its siblings ({"$regex": "^n", "$ne": "n0"} would drop
# the $ne), and any object with "$ref" and "$id" becomes a DBRef that carries
# every other key along, unseen by the allowlist.  The legacy
# {"$regex": …, "$options": …} form is left as the query operator it also is;
# a regular expression *value* is {"$regularExpression": {"pattern", "options"}}.
_WRAPPERS = frozenset(
    frozenset(keys)
    for keys in (
        {"$oid"}, {"$date"}, {"$numberInt"}, {"$numberLong"}, {"$numberDouble"}, {"$numberDecimal"},
        {"$binary"}, {"$binary", "$type"}, {"$uuid"}, {"$regularExpression"}, {"$timestamp"},
        {"$ref", "$id"}, {"$ref", "$id", "$db"}, {"$code"}, {"$code", "$scope"},
        {"$minKey"}, {"$maxKey"}, {"$symbol"}, {"$undefined"}, {"$dbPointer"},
    )
)  # fmt: skip
_DATE_FORMS = (
    'an ISO-8601 date and time, such as "2024-05-17T00:00:00Z" or "2024-05-17T10:30:00+02:00", '
    'or milliseconds since 1970 as {"$numberLong": "1715904000000"}'
)
_NON_FINITE = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


def _object(pairs: list[tuple[str, Any]]) -> Any:
    document = dict(pairs)
    if len(document) > 3 or frozenset(document) not in _WRAPPERS:
        return document
    regex = document.get("$regularExpression")
    if isinstance(regex, dict) and isinstance(regex.get("options"), str) and set(regex["options"]) - set("ilmsux"):
        raise ValueError("$regularExpression options holds a flag BSON does not know")
    try:
        value = json_util.object_hook(dict(document), RELAXED)
    except (ValueError, ArithmeticError):
        if "$date" in document:  # the one wrapper people write by hand: name the value and the forms
            shown = json.dumps(document["$date"])
            shown = shown if len(shown) <= 80 else shown[:80] + "…"
            raise InvalidValueError(f'{{"$date": {shown}}} is not a date: give {_DATE_FORMS}') from None
        raise
    if isinstance(value, dict):  # e.g. a "$ref" that is not a string
        raise ValueError(f"{next(iter(document))} is not in its documented shape")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and infinities are not stored; use null or a finite number")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; NaN and infinities are not stored")


def loads(data: str | bytes) -> Any:
    """Relaxed (or canonical) Extended JSON into Python and BSON values.

    A type wrapper (``{"$oid": …}``, ``{"$date": …}``, …) becomes its BSON
    value only in its exact documented shape; every other object stays an
    object.  NaN and infinities are refused (``NaN``, ``Infinity`` and
    ``{"$numberDouble": "NaN"}``): orjson could only write them back as null.
    Every malformed input raises ValueError: json_util also raises bson's own
    errors (an ``$oid`` that is not one), OverflowError (a date out of range),
    decimal errors and RecursionError (absurd nesting), which would otherwise
    surface as 500s.
    """
    try:
        return json.loads(data, object_pairs_hook=_object, parse_constant=_constant)
    except ValueError:
        raise
    except (BSONError, ArithmeticError, TypeError, KeyError, IndexError, RecursionError) as exc:
        raise ValueError(f"invalid Extended JSON: {exc}") from None


def decode_document(raw: RawBSONDocument) -> dict[str, Any]:
    """A stored document, decoded the way pages decode theirs."""
    return decode(raw.raw, _DECODE)


def encode_page(
    documents: Iterable[Any], max_bytes: int = MAX_PAGE_BYTES, drop: str | None = None
) -> tuple[bytearray, int, bool]:
    """A JSON array of ``documents`` that stays within ``max_bytes`` in Lambda's response.

    Returns the body, how many documents it holds, and whether it was cut
    short.  Each document is decoded (when raw) and encoded once, straight
    onto the end of one buffer: no list of pieces, no join, no second pass.
    The top-level field ``drop``, when given, is left out of every document.
    """
    page = PageBuffer(max_bytes)
    for document in documents:
        if not page.add(_encode_document(document, drop)):
            return page.body(), page.count, True
    return page.body(), page.count, False


UNREADABLE = (
    "this document cannot be returned as JSON (it nests deeper than JSON encoding allows, or holds "
    "a value that cannot be written); read it with a projection that leaves out the deep or odd fields"
)
# Anything decoding or encoding one stored document can raise.
ENCODING_ERRORS = (BSONError, orjson.JSONEncodeError, RecursionError, OverflowError, ValueError, TypeError)


def _encode_document(document: Any, drop: str | None = None) -> bytes:
    """One document as JSON; one that cannot be written becomes a stub naming its ``_id``.

    A document stored by another client (or nested past the limit before
    updates were checked) must not turn every page holding it into a 500.
    The stub's ``$error`` key cannot clash with a stored field: no field
    name here starts with ``$``.
    """
    try:
        if type(document) is RawBSONDocument:
            document = decode(document.raw, _DECODE)
        if drop is not None:
            document.pop(drop, None)
        return orjson.dumps(document, default=_default, option=_OPTIONS)
    except ENCODING_ERRORS as exc:
        log.warning("a stored document cannot be written as JSON: %s", type(exc).__name__)
    try:
        return orjson.dumps({"_id": document["_id"], "$error": UNREADABLE}, default=_default, option=_OPTIONS)
    except (*ENCODING_ERRORS, KeyError):
        return orjson.dumps({"$error": UNREADABLE})
