"""Relaxed Extended JSON, both ways, through bson's json_util semantics.

Reading is ``bson.json_util.loads`` itself.  Writing uses orjson with a
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
from collections.abc import Iterable
from typing import Any

import orjson
from bson import Int64, ObjectId, decode, json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError
from bson.raw_bson import RawBSONDocument

from chalicelib.errors import InvalidValueError
from chalicelib.paging import MAX_PAGE_BYTES, PageBuffer

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


def loads(data: str | bytes) -> Any:
    """Relaxed (or canonical) Extended JSON into Python and BSON values.

    Every malformed input raises ValueError: json_util also raises bson's own
    errors (an ``$oid`` that is not one), OverflowError (a date out of range),
    decimal errors and RecursionError (absurd nesting), which would otherwise
    surface as 500s.
    """
    try:
        return json.loads(data, object_hook=_object)
    except ValueError:
        raise
    except (BSONError, ArithmeticError, TypeError, KeyError, IndexError, RecursionError) as exc:
        raise ValueError(f"invalid Extended JSON: {exc}") from None


_DATE_FORMS = (
    'an ISO-8601 date and time, such as "2024-05-17T00:00:00Z" or "2024-05-17T10:30:00+02:00", '
    'or milliseconds since 1970 as {"$numberLong": "1715904000000"}'
)


def _object(obj: dict[str, Any]) -> Any:
    """bson's own hook (what ``json_util.loads`` does), with a $date it cannot read named."""
    try:
        return json_util.object_hook(obj, RELAXED)
    except (ValueError, ArithmeticError):
        if "$date" in obj and len(obj) == 1:
            value = json.dumps(obj["$date"])
            value = value if len(value) <= 80 else value[:80] + "…"
            raise InvalidValueError(f'{{"$date": {value}}} is not a date: give {_DATE_FORMS}') from None
        raise


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
        if type(document) is RawBSONDocument:
            document = decode(document.raw, _DECODE)
        if drop is not None:
            document.pop(drop, None)
        if not page.add(orjson.dumps(document, default=_default, option=_OPTIONS)):
            return page.body(), page.count, True
    return page.body(), page.count, False
