"""AWS clients built the cheap way, and AWS failures mapped to HTTP errors.

Clients come from botocore directly: importing boto3 also imports s3transfer
and the resource layer, which this code never uses (about 200 ms of every
cold start).  ``AWS_ENDPOINT_URL`` is honoured by botocore itself, which is
how the local stack points everything at moto's server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from chalicelib.errors import BadRequestError, ConfigurationError, ServiceUnavailableError

log = logging.getLogger(__name__)

# Codes after which trying again later can succeed.
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "InternalServerError",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServiceError",
}
# Codes that mean the stage points at something that is not there.
_MISCONFIGURED = {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException"}

_session: Any = None


def client(service: str) -> Any:
    """A botocore client with standard-mode retries and short timeouts.

    Standard mode retries throttling and transient errors with jittered
    backoff; the timeouts keep a request well inside API Gateway's 29 s.
    """
    global _session
    import botocore.session
    from botocore.config import Config

    if _session is None:
        _session = botocore.session.get_session()
    config = Config(
        # Three attempts in all: botocore's "max_attempts" would count retries only.
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return _session.create_client(service, config=config)


@contextlib.contextmanager
def aws_errors(what: str, resource: str | None = None) -> Iterator[None]:
    """Turn a botocore failure into a 503 (transient) or a configuration error.

    ``resource`` (a table name, say) goes to the log only, for the operator.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    where = f" ({resource})" if resource else ""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _THROTTLED:
            log.warning("%s%s throttled or failing after retries: %s", what, where, code)
            raise ServiceUnavailableError(f"{what} is busy; try again shortly") from None
        if code == "ValidationException":
            # What we checked is what DynamoDB checks, so this is rare: a key
            # DynamoDB refuses (say, invalid UTF-16 from a path) is the caller's.
            log.warning("%s%s refused a request: %s", what, where, exc.response.get("Error", {}).get("Message"))
            raise BadRequestError(f"{what} refused the request as invalid") from None
        if code in _MISCONFIGURED:
            log.error("%s%s is misconfigured: %s", what, where, code)
            raise ConfigurationError(f"{what} is not available: {code}") from None
        raise
    except BotoCoreError as exc:
        # Connection refused, timeouts, no credentials: nothing the caller did.
        log.warning("%s%s unreachable: %s", what, where, type(exc).__name__)
        raise ServiceUnavailableError(f"{what} is unreachable; try again shortly") from None
