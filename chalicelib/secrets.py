"""Secrets Manager loader: an injected client, a TTL cache, one error type.

Secrets are read through AWS's Parameters and Secrets Lambda Extension when
the container has it (a layer that serves secrets over localhost HTTP), so a
cold start that needs only a secret never imports botocore; otherwise, and if
the extension stops answering, through a botocore client.  See
:func:`secrets_client`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

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

# Either kind of failure: ConfigurationError (Code "ConfigurationError": an
# operator must act) or a plain ServiceUnavailableError (try again shortly).
# Both are 503s; neither message names the secret (the log does).
SecretError = ServiceUnavailableError


def _refused(code: str) -> ServiceUnavailableError:
    if code in _MISCONFIGURED:
        return ConfigurationError(f"a secret this stage needs cannot be read ({code})")
    return ServiceUnavailableError("Secrets Manager is busy or failing; try again shortly")


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
        if self._client is None:
            self._client = self._build_client()
        if isinstance(self._client, ExtensionClient):
            try:
                return _json_object(secret_id, self._client.get_secret_value(SecretId=secret_id))
            except ExtensionAbsentError:
                log.warning("the secrets extension is not listening; reading secrets with botocore from now on")
                self._client_factory, self._client = self._client.fallback, None
        return self._fetch_with_botocore(secret_id)

    def _build_client(self) -> Any:
        try:
            return self._client_factory()
        except Exception as exc:
            # Imported only here: the extension's path must not import botocore.
            from botocore.exceptions import BotoCoreError

            if not isinstance(exc, BotoCoreError):
                raise
            log.warning("cannot build a Secrets Manager client: %s", type(exc).__name__)
            raise SecretError("Secrets Manager is unreachable; try again shortly") from None

    def _fetch_with_botocore(self, secret_id: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._client is None:
                self._client = self._client_factory()
            response = self._client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            log.error("cannot read secret %s: %s", secret_id, code)
            raise _refused(code) from None
        except BotoCoreError as exc:
            log.warning("Secrets Manager unreachable reading %s: %s", secret_id, type(exc).__name__)
            raise SecretError("Secrets Manager is unreachable; try again shortly") from None
        return _json_object(secret_id, response)


def _json_object(secret_id: str, response: Any) -> dict[str, Any]:
    try:
        value = json.loads(response["SecretString"])
    except (KeyError, TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        log.error("secret %s is not a JSON object", secret_id)
        raise ConfigurationError("a secret this stage needs is not a JSON object")
    return value


# --- the Parameters and Secrets Lambda Extension --------------------------------

# Where the extension's layer puts its binary, and the port it listens on
# unless PARAMETERS_SECRETS_EXTENSION_HTTP_PORT says otherwise.
EXTENSION_BINARY = "/opt/extensions/AWSParametersAndSecretsLambdaExtension"
EXTENSION_PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DEFAULT_EXTENSION_PORT = 2773
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105  (a header name)
# The extension calls Secrets Manager itself; botocore's own read timeout here is 5 s.
EXTENSION_TIMEOUT_SECONDS = 6.0


class ExtensionAbsentError(Exception):
    """Nothing listens on the extension's port (the layer is missing or has stopped)."""


def extension_port(env: Mapping[str, str] | None = None, binary: str = EXTENSION_BINARY) -> int | None:
    """The extension's port when this container has the extension, else None.

    The extension is taken to be there when its layer's binary is, or when
    its port variable is set (how the local stand-in and tests point at it).
    """
    env = os.environ if env is None else env
    raw = env.get(EXTENSION_PORT_VARIABLE, "")
    if not raw and not os.path.exists(binary):
        return None
    try:
        port = int(raw or DEFAULT_EXTENSION_PORT)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        log.error("%s is not a port number: %r; reading secrets with botocore", EXTENSION_PORT_VARIABLE, raw)
        return None
    return port


class ExtensionClient:
    """``get_secret_value`` through the extension's ``GET /secretsmanager/get``.

    Plain HTTP on loopback with the standard library: no botocore, no
    signing (the extension signs with the function's role).  The session token
    proves to the extension that the caller runs in this container.  Failures
    are :class:`SecretError` with the messages the botocore path gives;
    nothing listening is :class:`ExtensionAbsentError`, so the loader can fall
    back to ``fallback`` (a botocore client factory).
    """

    def __init__(
        self,
        port: int,
        fallback: Callable[[], Any],
        host: str = "localhost",
        timeout: float = EXTENSION_TIMEOUT_SECONDS,
    ) -> None:
        self.port = port
        self.fallback = fallback
        self._host = host
        self._timeout = timeout

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        # http.client rather than urllib.request: the same connection code
        # without urllib's handler machinery, which a cold start would pay for.
        import http.client

        connection = http.client.HTTPConnection(self._host, self.port, timeout=self._timeout)
        try:
            connection.request(
                "GET",
                "/secretsmanager/get?" + urlencode({"secretId": SecretId}),
                headers={TOKEN_HEADER: os.environ.get("AWS_SESSION_TOKEN", "")},
            )
            response = connection.getresponse()
            status, body = response.status, response.read()
        except ConnectionRefusedError:
            raise ExtensionAbsentError from None
        except (OSError, http.client.HTTPException) as exc:
            log.warning("the secrets extension is unreachable reading %s: %s", SecretId, type(exc).__name__)
            raise SecretError("Secrets Manager is unreachable; try again shortly") from None
        finally:
            connection.close()
        if status == 200:
            try:
                return json.loads(body)
            except ValueError:
                log.error("the secrets extension answered %s with something that is not JSON", SecretId)
                raise SecretError("the secrets extension answered something unreadable; try again shortly") from None
        raise _extension_error(SecretId, status, body)


def _extension_error(secret_id: str, status: int, body: bytes) -> SecretError:
    """The extension's refusal as the botocore path would report it."""
    if status in (401, 403) and b"__type" not in body:
        # The extension's own refusal (wrong or missing token), not Secrets Manager's.
        log.error("the secrets extension refused the session token reading %s (%d)", secret_id, status)
        return ConfigurationError("a secret this stage needs cannot be read (the extension refused the request)")
    if status == 429 or status >= 500:
        # 500 its own failure, 502/504 Secrets Manager unreachable or slow, 503 not ready yet.
        log.warning("the secrets extension could not read %s: %d", secret_id, status)
        return SecretError("Secrets Manager is unreachable; try again shortly")
    try:
        error = json.loads(body)
        code = str(error.get("__type") or error.get("Code") or "")
    except (ValueError, AttributeError):
        code = ""
    code = code.rsplit("#", 1)[-1] or f"HTTP {status}"
    log.error("cannot read secret %s: %s", secret_id, code)
    return _refused(code)


def _botocore_client() -> Any:
    from chalicelib.aws import client

    return client("secretsmanager")


def secrets_client() -> Any:
    """What :class:`SecretsLoader` should read with in this container.

    The extension when it is there (its layer is a stage setting, see
    README's Deploy section), else a botocore Secrets Manager client.
    """
    port = extension_port()
    if port is None:
        return _botocore_client()
    return ExtensionClient(port, _botocore_client)
