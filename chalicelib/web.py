"""Small helpers for reading requests and writing responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import CORSConfig, Response

from chalicelib import paging
from chalicelib.errors import BadRequestError, InvalidValueError, PayloadTooLargeError

MAX_BODY_BYTES = 5 * 1024 * 1024
JSON_HEADERS = {"Content-Type": "application/json"}

# Every response header a client needs, readable by browser apps on any origin
# (fetch() hides all but a few unless the response names them).  The gateway
# responses in infra/resources.json and tools/local_gateway.py expose the same
# list on the errors they answer themselves; a test keeps the three in step.
EXPOSED_HEADERS = (
    "Link", "X-Total-Count", "Location", "Retry-After", "ETag", "Idempotent-Replayed", "WWW-Authenticate",
)
# Request headers a browser may send besides Chalice's defaults (Authorization,
# Content-Type, X-Amz-*, X-Api-Key): conditional and idempotent writes, and the
# Data API's key headers.
ALLOWED_HEADERS = ("Idempotency-Key", "If-Match", "If-None-Match", "apiKey", "api-key")
# The one CORS configuration of every route (Chalice requires one per path anyway).
CORS = CORSConfig(allow_origin="*", allow_headers=list(ALLOWED_HEADERS), expose_headers=list(EXPOSED_HEADERS),
                  max_age=600)


def raw_body(request: Any) -> bytes:
    body = request.raw_body or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body must be at most {MAX_BODY_BYTES} bytes")
    return body


def json_body(request: Any, loads: Callable[[bytes], Any] = json.loads, required: bool = True) -> Any:
    """The request's JSON body, parsed with ``loads``, or a 400/413 (None if absent and not required)."""
    body = raw_body(request)
    if not body.strip():
        if not required:
            return None
        raise BadRequestError("a JSON body is required")
    try:
        return loads(body)
    except InvalidValueError as exc:  # valid JSON; the message names what is wrong in it
        raise BadRequestError(_short(exc)) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise BadRequestError(f"the body is not valid JSON: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"


def is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode (a \\ud800 escape in JSON gives a lone surrogate)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def request_path(request: Any) -> str:
    """The path the client asked for (with the stage prefix on API Gateway)."""
    context = request.context or {}
    return context.get("path") or request.path


def query(request: Any) -> dict[str, str]:
    return dict(request.query_params or {})


def json_response(
    body: str | bytes | bytearray, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    # Lambda's runtime serialises the response dict itself, so the body must be a str.
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    return Response(body=body, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def page_response(
    request: Any, body: bytes | bytearray, next_token: str | None, headers: dict[str, str] | None = None
) -> Response:
    """A page of a list, with ``Link: <…>; rel="next"`` when more may follow."""
    headers = dict(headers or {})
    if next_token:
        headers["Link"] = paging.next_link(request_path(request), query(request), next_token)
    return json_response(body, headers=headers)
