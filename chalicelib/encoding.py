"""Relaxed Extended JSON, both ways, through bson's json_util semantics.

Reading uses ``bson.json_util.loads`` itself.  Writing uses orjson with a
``default`` hook: ObjectId and datetimes (nearly every document has them) take
a fast path, every other BSON type goes through ``json_util.default``, so the
output parses back to what ``json_util.dumps`` gives.  NaN and infinities come
out as ``null``: orjson has no hook for floats.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import orjson
from bson import Int64, ObjectId, json_util

RELAXED = json_util.RELAXED_JSON_OPTIONS
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
    if isinstance(obj, dict):  # SON and other mappings
        return dict(obj)
    if isinstance(obj, Int64):
        return int(obj)
    return json_util.default(obj, RELAXED)


def dumps(value: Any) -> bytes:
    """``value`` as relaxed Extended JSON bytes."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: str | bytes) -> Any:
    """Relaxed (or canonical) Extended JSON into Python and BSON values."""
    return json_util.loads(data, json_options=RELAXED)


def encode_page(documents: Iterable[Any], max_bytes: int) -> tuple[bytes, int, bool]:
    """A JSON array of ``documents`` no larger than ``max_bytes``.

    Returns the body, how many documents it holds, and whether it was cut
    short to stay under ``max_bytes``.  Each document is encoded once; the
    array is joined from those pieces, so there is no second pass.
    """
    parts: list[bytes] = []
    size = 2  # the brackets
    for document in documents:
        encoded = orjson.dumps(document, default=_default, option=_OPTIONS)
        size += len(encoded) + (1 if parts else 0)
        if size > max_bytes:
            return b"[" + b",".join(parts) + b"]", len(parts), True
        parts.append(encoded)
    return b"[" + b",".join(parts) + b"]", len(parts), False
