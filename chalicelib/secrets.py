"""Secrets Manager loader: an injected client, a TTL cache, one error type."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import ServiceUnavailableError

log = logging.getLogger(__name__)


class SecretError(ServiceUnavailableError):
    """A secret could not be read or is not what it should be (a 503 to callers)."""


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
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}  # id -> (read at, value)
        self._lock = threading.Lock()

    def get_json(self, secret_id: str, ttl_seconds: float | None = None) -> dict[str, Any]:
        """The secret's JSON, read again once it is older than ``ttl_seconds`` (default: the loader's)."""
        now = self._clock()
        ttl = self._ttl if ttl_seconds is None else ttl_seconds
        cached = self._cache.get(secret_id)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        try:
            value = self._fetch(secret_id)
        except SecretError:
            # A shorter ttl_seconds asks for fresher reads when they can be had; when one
            # fails, a copy within the loader's own TTL is as good as it would have been.
            if cached is not None and now - cached[0] < self._ttl:
                return cached[1]
            raise
        with self._lock:
            self._cache[secret_id] = (now, value)
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
            log.error("cannot read secret %s: %s", secret_id, code)
            raise SecretError(f"the secret {secret_id} cannot be read ({code})") from None
        except BotoCoreError as exc:
            log.warning("Secrets Manager unreachable reading %s: %s", secret_id, type(exc).__name__)
            raise SecretError("Secrets Manager is unreachable; try again shortly") from None
        try:
            value = json.loads(response["SecretString"])
        except (KeyError, TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            log.error("secret %s is not a JSON object", secret_id)
            raise SecretError(f"the secret {secret_id} is not a JSON object")
        return value
