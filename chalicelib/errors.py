"""Domain failures as the HTTP errors a caller sees.

Every error is one of Chalice's view errors, so Chalice renders it as
``{"Code": ..., "Message": ...}`` with the route's CORS headers.  The few
statuses Chalice has no class for are added here; app.py's middleware adds
``Retry-After`` to every 503.
"""

from chalice import (  # noqa: F401  (re-exported: the one place views import errors from)
    BadRequestError,
    ChaliceViewError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnprocessableEntityError,
)

RETRY_AFTER_SECONDS = 5


class PayloadTooLargeError(ChaliceViewError):
    STATUS_CODE = 413


class ServiceUnavailableError(ChaliceViewError):
    """A backend is unreachable, throttling, or misconfigured: try again later."""

    STATUS_CODE = 503


class ConfigurationError(ServiceUnavailableError):
    """The stage's configuration or a secret is unusable; an operator must act."""


class InvalidValueError(ValueError):
    """Well-formed JSON holding a value the API cannot read; the message names the value."""
class WriteOutcomeUnknownError(ServiceUnavailableError):
    """A write was sent but its answer was lost: it may or may not have been applied.

    Retrying with the same ``Idempotency-Key`` is safe: it answers the kept
    result if the write was applied, and runs it if it was not.
    """


# Chalice takes an error's Code from its class name; the contract's Code has no "Error" suffix.
WriteOutcomeUnknownError.__name__ = "WriteOutcomeUnknown"
WriteOutcomeUnknownError.__qualname__ = "WriteOutcomeUnknown"
