"""One Data API request: who is calling, what they may touch, one action, the documented errors.

The routes carry no Chalice authorizer (API Gateway's TOKEN authorizer reads
one header, and this contract has several), so credentials are checked here,
by the same UserDirectory as the authorizer, and grants by the same
``auth.allowed``.  Every failure answers ``{"error", "error_code"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import ChaliceViewError, Response

from chalicelib import auth
from chalicelib.dataapi import formats
from chalicelib.dataapi.actions import ACTIONS, namespace
from chalicelib.docdb.query import check_namespace
from chalicelib.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    WriteOutcomeUnknownError,
)

if TYPE_CHECKING:
    from chalicelib.auth import UserDirectory
    from chalicelib.docdb.service import CollectionService

log = logging.getLogger(__name__)

KEY_HEADERS = ("apikey", "api-key")  # the documented header, and what common clients send
UNOFFERED_HEADERS = ("email", "password", "jwttokenstring")  # other Atlas providers
NO_AUTHENTICATION = "no authentication methods were specified"
NO_USER = "invalid session: error finding user for endpoint"


class UnauthorizedError(ChaliceViewError):
    STATUS_CODE = 401


class IdempotencyKeyInUseError(ConflictError):
    """A request with this Idempotency-Key is still being served (409, with Retry-After)."""


# error_code per failure: the contract's own where it names one, ours elsewhere.
_CODES: tuple[tuple[type[Exception], str], ...] = (
    (formats.MissingParameterError, "MissingParameter"),
    (BadRequestError, "InvalidParameter"),
    (UnauthorizedError, "InvalidSession"),
    (ForbiddenError, "Forbidden"),
    (NotFoundError, "NotFound"),
    (IdempotencyKeyInUseError, "IdempotencyKeyInUse"),
    (UnprocessableEntityError, "IdempotencyKeyMismatch"),
    (ConflictError, "DuplicateKey"),
    (PayloadTooLargeError, "PayloadTooLarge"),
    (formats.UnsupportedMediaTypeError, "UnsupportedMediaType"),
    (WriteOutcomeUnknownError, "WriteOutcomeUnknown"),
    (ServiceUnavailableError, "ServiceUnavailable"),
)


def error_code(exc: ChaliceViewError) -> str:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return "InternalServerError"


def error_response(exc: ChaliceViewError) -> Response:
    import orjson

    body = orjson.dumps({"error": str(exc), "error_code": error_code(exc)}).decode()
    return Response(body=body, status_code=exc.STATUS_CODE, headers={"Content-Type": formats.JSON})


def handle(
    request: Any,
    action_name: str,
    users: Callable[[], UserDirectory],
    service: Callable[[], CollectionService],
    return_type: str,
) -> Response:
    """Answer ``POST …/action/{action_name}``; ``return_type`` is the stage's default (JSON or EJSON)."""
    try:
        action = ACTIONS.get(action_name)
        if action is None:
            raise NotFoundError(f"there is no action {action_name[:100]!r}; the actions are {', '.join(ACTIONS)}")
        user, grants = authenticate(request.headers, users())
        if isinstance(request.context, dict):
            request.context["principal"] = user  # for the request log (chalicelib/requestlog.py)
        principal = auth.Principal(user, tuple(auth.parse_grants(grants)))
        media = formats.response_type(request.headers.get("accept"), formats.default_type(return_type))
        body = formats.read_body(request)
        database, collection = namespace(body)
        method = "POST" if action.write else "GET"
        if not auth.allowed(list(principal.grants), database, collection, method):
            access = "write" if action.write else "read"
            raise ForbiddenError(f"your grants do not allow {action_name} ({access}) on {database}/{collection}")
        action.check_fields(body)
        for other in sorted(action.reads(body)):  # what a pipeline joins: the same checks as its source
            check_namespace(database, other)
            principal.require(database, other, "GET")
        if action.write:
            return _write_once(request, user, action, service(), database, collection, body, media)
        payload = action.run(service(), database, collection, body, media)
    except ChaliceViewError as exc:
        return error_response(exc)
    except Exception:
        # A bug, not bad input: logged with its traceback (never a header or body), answered in the contract's shape.
        request_id = (request.context or {}).get("requestId", "unknown")
        log.exception("the Data API action %s failed (request id %s)", action_name[:100], request_id)
        failure = ChaliceViewError(f"An internal server error occurred (request id {request_id}).")
        return error_response(failure)
    return Response(body=payload.decode(), status_code=200, headers={"Content-Type": media})


def authenticate(headers: Any, users: UserDirectory) -> tuple[str, str]:
    """``(user, grants comma-joined)`` from Basic credentials or an API key.

    In the order Atlas checked them: ``Authorization`` first, then the key
    headers.  Nothing here logs a header value.
    """
    authorization = headers.get("authorization")
    scheme = (authorization or "").strip().partition(" ")[0].lower()
    if scheme == "basic":
        return _found(users.authenticate(authorization))
    if scheme == "bearer":  # access tokens are not issued here
        raise UnauthorizedError(NO_USER)
    for name in KEY_HEADERS:
        key = headers.get(name)
        if key is not None:
            if not key.strip():
                raise formats.MissingParameterError(f"the {name} header is empty")
            return _found(users.authenticate_key(key.strip()))
    if authorization is not None or any(headers.get(name) is not None for name in UNOFFERED_HEADERS):
        raise UnauthorizedError(NO_USER)
    raise BadRequestError(NO_AUTHENTICATION)


def _found(result: tuple[str, str] | None) -> tuple[str, str]:
    if result is None:
        raise UnauthorizedError(NO_USER)
    return result


def _write_once(
    request: Any, user: str, action: Any, service: CollectionService, database: str, collection: str,
    body: dict[str, Any], media: str,
) -> Response:
    """A write action, run once per ``Idempotency-Key`` (chalicelib/idempotency.py), as the REST writes are.

    Keys belong to the user, as on the REST routes; the kept answer is replayed
    with ``Idempotent-Replayed: true``.  The "still in progress" 409 takes this
    contract's error shape.
    """
    from chalicelib.idempotency import HEADER, idempotent

    def run(session: Any) -> Response:
        payload = action.run(service, database, collection, body, media, session)
        return Response(body=payload.decode(), status_code=200, headers={"Content-Type": media})

    response = idempotent(request, lambda _request: f"user:{user}", lambda: service.records(database, collection), run)
    if response.status_code == 409:
        busy = error_response(IdempotencyKeyInUseError(f"a request with this {HEADER} is still in progress"))
        busy.headers.update({k: v for k, v in response.headers.items() if k == "Retry-After"})
        return busy
    return response
