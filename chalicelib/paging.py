"""Opaque ``next`` cursors and the ``Link: <…>; rel="next"`` header.

A cursor is base64url-encoded JSON ``{"k": kind, ...}``.  The kind stops a
cursor of one list being replayed on another; every field is checked on the
way back in, so a forged or corrupt cursor is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from chalicelib.errors import BadRequestError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_CHARS = 4096


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """``limit`` from a query string: a whole number from 1 to ``maximum``."""
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7 or not 1 <= int(raw) <= maximum:
        raise BadRequestError(f"limit must be a whole number from 1 to {maximum}")
    return int(raw)


def encode_cursor(kind: str, **fields: Any) -> str:
    raw = json.dumps({"k": kind, **fields}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, kind: str) -> dict[str, Any]:
    """The fields of a cursor made by :func:`encode_cursor` for ``kind``."""
    invalid = BadRequestError("next is not a cursor this list issued; start again without it")
    if not token or len(token) > MAX_CURSOR_CHARS or not token.isascii():
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(data, dict) or data.pop("k", None) != kind:
        raise invalid
    return data


def next_link(path: str, query: Mapping[str, str], token: str) -> str:
    """The ``Link`` header value for the page after this one."""
    params = {k: v for k, v in query.items() if k != "next"}
    params["next"] = token
    return f'<{path}?{urlencode(params)}>; rel="next"'
