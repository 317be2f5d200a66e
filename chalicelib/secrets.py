"""Secrets Manager loader: an injected client, a TTL cache, one error type."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import ConfigurationError, ServiceUnavailableError

log = logging.getLogger(__name__)

# A secret read that fails with one of these will fail again until an
# operator acts: the secret is missing, unreadable by this role, or broken.
_MISCONFIGURED = {
    "ResourceNotFoundException",
    "AccessDeniedException",
    "DecryptionFailure",
    "InvalidRequestException",
    "InvalidParameterException",
    "UnrecognizedClientException",
}

# Either kind of failure: ConfigurationError (an operator must act) or a
# plain ServiceUnavailableError (try again shortly).  Both are 503s.
SecretError = ServiceUnavailableError


class SecretsLoader:
    """Reads JSON secrets and keeps each for ``ttl_seconds``.

    ``client_factory`` builds the Secrets Manager client on first use, so a
    container that never needs a secret never pays for the client.  Failed
    reads are never cached: the next call tries again.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get_json(self, secret_id: str) -> dict[str, Any]:
        now = self._clock()
        cached = self._cache.get(secret_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        value = self._fetch(secret_id)
        with self._lock:
            self._cache[secret_id] = (now + self._ttl, value)
        return value

    def invalidate(self, secret_id: str) -> None:
        """Forget ``secret_id`` so the next read goes to Secrets Manager."""
        with self._lock:
            self._cache.pop(secret_id, None)

    def _fetch(self, secret_id: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._client is None:
                self._client = self._client_factory()
            response = self._client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISCONFIGURED:
                log.error("cannot read secret %s: %s", secret_id, code)
                # The id goes to the log only: callers learn what kind of fault it is.
                raise ConfigurationError(f"a secret this stage needs cannot be read ({code})") from None
            log.warning("Secrets Manager failed reading %s: %s", secret_id, code)
            raise ServiceUnavailableError("Secrets Manager is busy or failing; try again shortly") from None
        except BotoCoreError as exc:
            log.warning("Secrets Manager unreachable reading %s: %s", secret_id, type(exc).__name__)
            raise ServiceUnavailableError("Secrets Manager is unreachable; try again shortly") from None
        try:
            value = json.loads(response["SecretString"])
        except (KeyError, TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            log.error("secret %s is not a JSON object", secret_id)
            raise ConfigurationError("a secret this stage needs is not a JSON object")
        return value
