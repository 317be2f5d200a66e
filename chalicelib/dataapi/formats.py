"""The Data API's wire formats: request bodies in, canonical EJSON or plain JSON out.

Requests (``application/json`` or ``application/ejson``) may use canonical or
relaxed Extended JSON either way, and are read by the REST routes' own parser
(chalicelib.docdb.encoding.loads).  Responses are canonical EJSON for
``application/ejson`` and, for ``application/json``, plain JSON with BSON types
mapped as the Data API's data-formats page tables them (ObjectId and Decimal128
as strings, dates as ISO-8601 strings, Binary as ``{"Subtype", "Data"}``, …).
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterable
from typing import Any

import orjson
from bson import DatetimeMS, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp, json_util
from bson.raw_bson import RawBSONDocument
from chalice import ChaliceViewError

from chalicelib import web
from chalicelib.docdb import encoding
from chalicelib.docdb.revision import REV
from chalicelib.errors import BadRequestError, ConfigurationError
from chalicelib.paging import MAX_PAGE_BYTES, PageBuffer, lambda_size

JSON = "application/json"
EJSON = "application/ejson"
RETURN_TYPES = {"JSON": JSON, "EJSON": EJSON}
CANONICAL = json_util.CANONICAL_JSON_OPTIONS

_ORJSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
_UTC = datetime.UTC
_REGEX_FLAGS = (("i", re.IGNORECASE), ("l", re.LOCALE), ("m", re.MULTILINE), ("s", re.DOTALL),
                ("u", re.UNICODE), ("x", re.VERBOSE))  # fmt: skip


class UnsupportedMediaTypeError(ChaliceViewError):
    STATUS_CODE = 415


class MissingParameterError(BadRequestError):
    """A required header or field is absent (the contract's ``MissingParameter``)."""


def default_type(setting: str) -> str:
    """The media type a stage's ``DATA_API_RETURN_TYPE`` (JSON or EJSON) names."""
    try:
        return RETURN_TYPES[setting.upper()]
    except KeyError:
        raise ConfigurationError(f"DATA_API_RETURN_TYPE must be JSON or EJSON, not {setting!r}") from None


def response_type(accept: str | None, default: str) -> str:
    """The format ``Accept`` prefers of the two, else ``default``."""
    best, best_q = None, 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        if media not in (JSON, EJSON):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = media, q
    return best or default


def read_body(request: Any) -> dict[str, Any]:
    """The request's body as Python and BSON values: 400, 413 or 415 when it cannot be."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not content_type:
        raise MissingParameterError("the Content-Type header is required: application/json or application/ejson")
    if content_type not in (JSON, EJSON):
        raise UnsupportedMediaTypeError(
            f"Content-Type {content_type[:100]!r} is not accepted: use application/json or application/ejson"
        )
    body = web.json_body(request, encoding.loads)
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    return body


def decoded(document: RawBSONDocument | None) -> dict[str, Any] | None:
    return None if document is None else _shown(document)


def _shown(raw: RawBSONDocument) -> dict[str, Any]:
    """A stored document as the REST routes show it: decoded as pages decode theirs, without ``_rev``."""
    document = encoding.decode_document(raw)
    document.pop(REV, None)
    return document


def dumps(value: Any, media_type: str) -> bytes:
    """``value`` (decoded documents, ids, counts) in the response format."""
    if media_type == EJSON:
        return json_util.dumps(value, json_options=CANONICAL).encode()
    return orjson.dumps(value, default=_plain, option=_ORJSON)


def documents_body(documents: Iterable[Any], media_type: str, max_bytes: int = MAX_PAGE_BYTES) -> bytes:
    """``{"documents": [...]}`` within ``max_bytes`` as Lambda counts it, or a 400."""
    page = PageBuffer(max_bytes - lambda_size(b'{"documents":}'))
    for document in documents:
        if not page.add(_document(document, media_type)):
            raise BadRequestError(
                f"the matching documents come to more than the {max_bytes} byte response limit after "
                f"{page.count}; narrow the filter, project fewer fields or lower limit"
            )
    return b'{"documents":' + bytes(page.body()) + b"}"


def _document(document: Any, media_type: str) -> bytes:
    """One document; one that cannot be written becomes the stub the REST routes use (issue 11)."""
    try:
        if type(document) is RawBSONDocument:
            document = _shown(document)
        return dumps(document, media_type)
    except encoding.ENCODING_ERRORS:
        pass
    try:
        return dumps({"_id": document["_id"], "$error": encoding.UNREADABLE}, media_type)
    except (*encoding.ENCODING_ERRORS, KeyError):
        return dumps({"$error": encoding.UNREADABLE}, media_type)


def within_budget(body: bytes, max_bytes: int = MAX_PAGE_BYTES) -> bytes:
    if lambda_size(body) > max_bytes:
        raise BadRequestError(
            f"the document is larger than the {max_bytes} byte response limit; project fewer fields"
        )
    return body


def _plain(obj: Any) -> Any:
    """One BSON value in the Data API's plain JSON (orjson's ``default`` hook)."""
    kind = type(obj)
    if kind is ObjectId:
        return str(obj)
    if kind is datetime.datetime:
        if obj.tzinfo is not None:
            obj = obj.astimezone(_UTC).replace(tzinfo=None)
        return obj.isoformat(timespec="milliseconds") + "Z"
    if kind is RawBSONDocument:
        return encoding.decode_document(obj)
    if kind is Decimal128:
        return str(obj)
    if isinstance(obj, Int64):
        return int(obj)
    if kind is DatetimeMS:  # beyond years 1-9999: its milliseconds since 1970
        return int(obj)
    if isinstance(obj, bytes):  # Binary, and subtype 0 decoded as bytes
        return {"Subtype": getattr(obj, "subtype", 0), "Data": base64.b64encode(obj).decode()}
    if isinstance(obj, (Regex, re.Pattern)):
        flags = obj.flags if isinstance(obj.flags, int) else 0
        return {"Pattern": obj.pattern, "Options": "".join(c for c, bit in _REGEX_FLAGS if flags & bit)}
    if kind is Timestamp:
        return {"T": obj.time, "I": obj.inc}
    if kind in (MinKey, MaxKey):
        return {}
    if isinstance(obj, dict):  # SON and other mappings
        return dict(obj)
    # Types the data-formats table does not list keep their relaxed EJSON form.
    return json_util.default(obj, encoding.RELAXED)

