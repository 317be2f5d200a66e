"""Opaque ``next`` cursors and the ``Link: <…>; rel="next"`` header.

A cursor is base64url-encoded JSON ``{"k": kind, ...}``.  The kind stops a
cursor of one list being replayed on another; every field is checked on the
way back in, so a corrupt cursor is a 400, never a 500.  A DocumentDB cursor
also carries an HMAC under a key derived from the stage's DocumentDB secret
(:meth:`chalicelib.docdb.client.DocdbConnection.cursor_key`), so an edited or
forged one is a 400 too.  Link and movie cursors are not signed: they hold
only the key to start after, so an edited one starts elsewhere in the same
table and reaches nothing a walk from the start would not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from chalicelib.errors import BadRequestError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_CHARS = 4096
# Lambda's synchronous response limit is 6 MB, counted after the runtime has
# written the response as JSON; a page stays under 5 MB of that.
MAX_PAGE_BYTES = 5 * 1024 * 1024
_ASCII = bytes(range(128))
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def lambda_size(encoded: bytes) -> int:
    """An upper bound on what UTF-8 JSON ``encoded`` costs in Lambda's response.

    The body travels as a JSON string inside the response object, which the
    Python 3.11 runtime writes with ``ensure_ascii``: every quote and
    backslash gains a backslash, and a non-ASCII character of n UTF-8 bytes
    becomes one or two ``\\uXXXX`` escapes (at most 3n bytes).
    """
    return (
        len(encoded)
        + encoded.count(b'"')
        + encoded.count(b"\\")
        + 2 * len(encoded.translate(None, _ASCII))
    )


class PageBuffer:
    """A JSON array built from already-encoded items, kept within a byte budget."""

    def __init__(self, max_bytes: int = MAX_PAGE_BYTES) -> None:
        self._out = bytearray(b"[")
        self._size = 2  # the brackets
        self._max = max_bytes
        self.count = 0

    def add(self, encoded: bytes) -> bool:
        """Append ``encoded``; False (and nothing appended) if it would not fit."""
        cost = lambda_size(encoded) + (1 if self.count else 0)
        if self._size + cost > self._max:
            return False
        if self.count:
            self._out += b","
        self._out += encoded
        self._size += cost
        self.count += 1
        return True

    def body(self) -> bytearray:
        self._out += b"]"
        return self._out


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """``limit`` from a query string: a whole number from 1 to ``maximum``."""
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7 or not 1 <= int(raw) <= maximum:
        raise BadRequestError(f"limit must be a whole number from 1 to {maximum}")
    return int(raw)


def encode_cursor(kind: str, signing_key: bytes | None = None, **fields: Any) -> str:
    """An opaque cursor for ``kind``; with ``signing_key``, followed by ``.`` and its HMAC."""
    raw = json.dumps({"k": kind, **fields}, separators=(",", ":")).encode()
    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if signing_key is None:
        return token
    return f"{token}.{_signature(signing_key, token)}"


def _signature(key: bytes, token: str) -> str:
    digest = hmac.new(key, token.encode("ascii"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, kind: str, signing_key: bytes | None = None) -> dict[str, Any]:
    """The fields of a cursor made by :func:`encode_cursor` for ``kind`` (and ``signing_key``)."""
    invalid = BadRequestError("next is not a cursor this list issued; start again without it")
    if not token or len(token) > MAX_CURSOR_CHARS or not token.isascii():
        raise invalid
    if signing_key is not None:
        token, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, _signature(signing_key, token)):
            raise invalid
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):  # "[[[[…" nests past the parser
        raise invalid from None
    if not isinstance(data, dict) or data.pop("k", None) != kind:
        raise invalid
    return data


def next_link(path: str, query: Mapping[str, str], token: str) -> str:
    """The ``Link`` header value for the page after this one."""
    params = {k: v for k, v in query.items() if k != "next"}
    params["next"] = token
    # The path comes from the request: percent-encode anything that could end
    # the <…> or the header's quoting (a raw > or "), keeping existing escapes.
    return f'<{quote(path, safe=_PATH_SAFE)}?{urlencode(params)}>; rel="next"'
