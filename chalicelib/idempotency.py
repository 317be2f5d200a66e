"""Safe retries: ``Idempotency-Key`` on every write, applied exactly once.

A write that carries ``Idempotency-Key: <1–255 printable ASCII>`` is run
once; its response (status, body, ``Content-Type``, ``Location``, ``ETag``)
is kept for 24 hours in a record written **in the same transaction as the
write**, so after a lost reply the record exists exactly when the write
happened.  A repeat of the same request with the same key answers the kept
response with ``Idempotent-Replayed: true`` and applies nothing; the same key
with a different request is a 422 naming what differs; a repeat while the
first is still in flight is a 409 with ``Retry-After``; a malformed key is a
400.  Keys are scoped to the caller: the authenticated user on ``/docdb``,
the route (``POST /link``) on the public routes.

Only a 2xx is kept.  A write that fails commits nothing, record included, so
its retry simply runs again.

Where records live (the backend of the route, so they commit with the write):

- DocumentDB: collection ``idempotency`` of the reserved database
  ``_docdb_rest`` (no client can reach it), a 24-hour TTL index on ``created_at``;
  see :mod:`chalicelib.docdb.idempotency`.
- DynamoDB: the table named by ``IDEMPOTENCY_TABLE`` (key ``id``, TTL on
  ``expires_at``), written in the same ``TransactWriteItems`` as the item;
  see :mod:`chalicelib.tables.idempotency`.

Expired records are ignored on read, whatever the TTL sweeper has done yet.

How to make a new write route idempotent
----------------------------------------
1. Write the route's work as ``run(tx) -> Response``: ``tx`` is ``None``
   (no key: do exactly what the route did before), a pymongo session with a
   transaction started (DocumentDB: pass ``session=tx`` to every
   :class:`~chalicelib.docdb.service.CollectionService` write), or a
   :class:`~chalicelib.tables.idempotency.DynamoTransaction` (DynamoDB: have
   the store ``tx.add(...)`` its item instead of writing it).  Validate the
   request before any write; raise the usual HTTP errors.  ``run`` is called
   on a repeat too (its transaction is then rolled back, or its items never
   sent), so it must write nothing outside ``tx``.
2. Return ``idempotent(request, scope, records, run)`` from the view, with
   ``scope`` = :func:`user_scope` (authenticated routes) or
   :func:`route_scope` (public ones), and ``records`` a getter of the
   backend's record store (``service.records(database, collection)`` or
   app.py's ``get_table_records``).
3. In the route's OpenAPI operation, wrap it in :func:`describe`.
4. Test the lost reply and the replay (tests/faults/test_idempotency.py
   shows how).

A request without the header costs one dict lookup: ``run(None)`` is called
directly, and nothing below (hashing, records, transactions) is imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib.errors import BadRequestError, UnprocessableEntityError

if TYPE_CHECKING:
    from typing import Protocol

    from chalice.app import Request

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255
TTL_SECONDS = 24 * 60 * 60
IN_FLIGHT_RETRY_AFTER_SECONDS = 1
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
# The parts of a request a key is bound to, in the order a mismatch is named.
PARTS = ("method", "path", "query", "body")

Run = Callable[[Any], Response]


if TYPE_CHECKING:  # a Protocol class costs a cold start too; only the type checker needs it

    class Records(Protocol):
        """Where a backend keeps its records, and how it runs a write with one."""

        def execute(self, claim: Claim, run: Run) -> Response:
            """Run ``run`` with its record in one transaction, or answer from the kept record."""
            ...


class Claim:
    """One keyed request: who sent which key for what, and until when it is kept."""

    # A plain class, not a dataclass: building a dataclass costs a cold start about a millisecond.
    __slots__ = ("fingerprint", "id", "key", "now", "scope", "ttl_seconds")

    def __init__(self, id: str, scope: str, key: str, fingerprint: dict[str, str], now: float,
                 ttl_seconds: float = TTL_SECONDS) -> None:  # fmt: skip
        self.id = id  # the record's key: a digest of scope and key
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.now = now  # epoch seconds
        self.ttl_seconds = ttl_seconds

    @property
    def expires_at(self) -> float:
        return self.now + self.ttl_seconds


class Kept:
    """The response a record keeps, and the replay made from it."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}

    @classmethod
    def of(cls, response: Response) -> Kept:
        body = response.body
        headers = {name: str(value) for name, value in (response.headers or {}).items() if name in KEPT_HEADERS}
        if not isinstance(body, str):
            # As Chalice writes a dict or list body.
            body = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else _json(body)
            headers.setdefault("Content-Type", "application/json")
        return cls(response.status_code, body, headers)

    def replay(self) -> Response:
        return Response(body=self.body, status_code=self.status, headers={**self.headers, REPLAYED_HEADER: "true"})

    def to_record(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body, "headers": self.headers}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Kept:
        return cls(int(record["status"]), str(record["body"]), {str(k): str(v) for k, v in record["headers"].items()})


def _json(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


# --- the one call a write route makes -------------------------------------------


def idempotent(request: Request, scope: Callable[[Request], str], records: Callable[[], Records], run: Run) -> Response:
    """``run(None)`` when the request has no key; else run it exactly once for its key.

    ``scope`` and ``records`` are called only when a key is present, so an
    unkeyed write builds nothing and touches no record.
    """
    raw = request.headers.get(HEADER)
    if raw is None:
        return run(None)
    import time

    key = parse_key(raw)
    owner = scope(request)
    claim = Claim(
        id=record_id(owner, key),
        scope=owner,
        key=key,
        fingerprint=request_fingerprint(request),
        now=time.time(),
    )
    return records().execute(claim, run)


def parse_key(raw: str) -> str:
    """The key as sent, or a 400: 1 to 255 printable ASCII characters (space included, as in RFC 9110 field values)."""
    if not 1 <= len(raw) <= MAX_KEY_CHARS or not all(" " <= ch <= "~" for ch in raw):
        raise BadRequestError(f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return raw


def user_scope(request: Request) -> str:
    """Keys of an authenticated route belong to the user the authorizer let in."""
    from chalicelib.auth import Principal

    return "user:" + Principal.from_context(request.context).user


def route_scope(request: Request) -> str:
    """Keys of a public route belong to the route (method and path template)."""
    return f"route:{request.method} {request.path}"


def record_id(scope: str, key: str) -> str:
    import hashlib

    return hashlib.sha256(_json([scope, key]).encode()).hexdigest()


def request_fingerprint(request: Request) -> dict[str, str]:
    from chalicelib import web

    query = request.query_params
    pairs = [] if query is None else [(name, query.getlist(name)) for name in query]
    return fingerprint(request.method, request.path, request.uri_params or {}, pairs, web.raw_body(request))


def fingerprint(
    method: str,
    path: str,
    path_params: dict[str, str],
    query: list[tuple[str, list[str]]],
    body: bytes,
) -> dict[str, str]:
    """What a key is bound to: method, path, canonical query and body, each as a digest.

    The path is the route's template with its parameters; the query's names
    are sorted but each name's values keep their order; the body is hashed
    byte for byte (a retry sends the same bytes).
    """
    import hashlib

    def digest(value: Any) -> str:
        data = value if isinstance(value, bytes) else _json(value).encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()

    return {
        "method": method.upper(),
        "path": digest([path, sorted(path_params.items())]),
        "query": digest(sorted((name, list(values)) for name, values in query)),
        "body": digest(body),
    }


# --- what a backend answers when a record exists -----------------------------------


def answer_kept(claim: Claim, fingerprint: dict[str, Any], kept: Kept) -> Response:
    """The replay, or a 422 naming what differs from the request the key was first used for."""
    differs = [part for part in PARTS if fingerprint.get(part) != claim.fingerprint[part]]
    if differs:
        raise UnprocessableEntityError(
            f"this {HEADER} was first used for a request with a different {' and '.join(differs)}; "
            "use a new key for a new request"
        )
    return kept.replay()


def in_flight() -> Response:
    """409: a request with this key is still being served; try again shortly."""
    return Response(
        body={
            "Code": "IdempotencyKeyInUse",
            "Message": f"a request with this {HEADER} is still in progress; retry after Retry-After seconds",
        },
        status_code=409,
        headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
    )


def keeps(response: Response) -> bool:
    """Whether ``response`` is kept for replays: successes only."""
    return 200 <= response.status_code < 300


def unknown_outcome_advice(keyed: bool) -> str:
    if keyed:
        return f"retry with the same {HEADER}: it answers the result if the write was applied and runs it if not"
    return f"look before retrying; send an {HEADER} to make a retry safe"


# --- the API document ----------------------------------------------------------------


def describe(operation: dict[str, Any]) -> dict[str, Any]:
    """``operation`` (an OpenAPI write operation) with the header and its answers."""
    from chalicelib import openapi

    replayed = {
        REPLAYED_HEADER: {
            "description": "`true` when this is the kept response of an earlier request with the same key",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    responses = {}
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            response = {**response, "headers": {**response.get("headers", {}), **replayed}}
        responses[status] = response
    conflict = responses.get("409")
    responses["409"] = openapi.error(
        ("a request with this Idempotency-Key is still in progress (retry after Retry-After)"
         + (f"; or {conflict['description']}" if conflict else "")),
        headers=openapi.RETRY_AFTER,
    )  # fmt: skip
    responses["422"] = openapi.error("this Idempotency-Key was first used for a different request")
    responses.setdefault("400", openapi.ERRORS["400"])
    responses["503"] = {
        **responses.get("503", openapi.ERRORS["503"]),
        "description": (
            "a backend is unreachable, throttling or misconfigured; or (Code WriteOutcomeUnknown) the write's "
            "answer was lost: retry with the same Idempotency-Key. Retry after Retry-After"
        ),
    }
    return {**operation, "parameters": [*operation.get("parameters", []), KEY_PARAMETER], "responses": responses}


KEY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[ -~]+$"},
    "description": (
        "Makes the write safe to retry: the first request with a key runs, and its response is kept for "
        "24 hours; a repeat with the same key and request answers that response (Idempotent-Replayed: true) "
        "without applying the write again. Scoped to the caller (the user on /docdb, the route on public routes)."
    ),
}
