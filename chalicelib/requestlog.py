"""One JSON line per request, the shape CloudWatch Logs Insights reads.

Each line is a single JSON object written straight to stdout (Lambda sends
every stdout line to CloudWatch Logs as one event, and Logs Insights finds
the fields of a JSON event by itself)::

    {"type": "request", "request_id": "…", "method": "GET", "route": "/docdb/{db}/{collection}",
     "path": "/docdb/blog/posts", "status": 200, "latency_ms": 12.3, "principal": "apiuser"}

Never a header, a query string or a body: those carry credentials and data.
The logger does not propagate, so Lambda's root handler does not repeat the
line with its text prefix (which would hide the JSON from Logs Insights).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

LOGGER_NAME = "docdb_rest.requests"
log = logging.getLogger(LOGGER_NAME)


class _StdoutLines(logging.Handler):
    """Each record's message as one line on the current ``sys.stdout``.

    ``sys.stdout`` is looked up per record, not kept, so a test runner that
    swaps it does not leave the handler writing to a closed stream.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


if not log.handlers:
    log.addHandler(_StdoutLines())
    log.setLevel(logging.INFO)
    log.propagate = False


def request_id(context: dict[str, Any]) -> str:
    """API Gateway's request id; one made up where there is none (chalice local), kept in the context."""
    rid = context.get("requestId")
    if not rid:
        rid = context["requestId"] = f"local-{os.urandom(8).hex()}"
    return str(rid)


def record(event: Any, status: int, latency_ms: float) -> dict[str, Any]:
    """The fields of one request's line: what was asked, by whom, and how it went."""
    context = event.context if isinstance(event.context, dict) else {}
    authorizer = context.get("authorizer") or {}
    return {
        "type": "request",
        "request_id": request_id(context),
        "method": event.method,
        "route": context.get("resourcePath"),
        "path": context.get("path") or event.path,
        "status": status,
        "latency_ms": round(latency_ms, 1),
        # The authorizer's user; routes that check credentials themselves (the Data API) leave theirs
        # in the context as "principal".
        "principal": context.get("principal") or (authorizer.get("principalId") if isinstance(authorizer, dict)
                                                    else None),
    }


def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice ``http`` middleware: answer the request, then write its line."""
    start = time.perf_counter()
    if isinstance(event.context, dict):
        request_id(event.context)  # before the view runs, so a 500's message names the same id
    status = 500
    try:
        response = get_response(event)
        status = response.status_code
        return response
    finally:
        log.info(json.dumps(record(event, status, (time.perf_counter() - start) * 1000), ensure_ascii=True))
