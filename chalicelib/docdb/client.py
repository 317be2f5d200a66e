"""One MongoClient per container, built from the DocumentDB secret.

TLS is verified against the CA bundle when the secret says ``ssl``;
``retryWrites=false`` because DocumentDB before 8.0.2 rejects retryable
writes; the pool is small because a Lambda container serves one request at a
time; every timeout sits well under API Gateway's 29 s.  When the server
rejects the password, the secret is re-read once and the client rebuilt, so
a rotated password heals without a redeploy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from chalicelib.errors import BadRequestError, ConfigurationError, ConflictError, ServiceUnavailableError
from chalicelib.settings import DEFAULT_WRITE_CONCERN

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVER_SELECTION_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT_MS = 3_000
SOCKET_TIMEOUT_MS = 15_000
MAX_TIME_MS = 10_000  # per query, on the server (REQUEST_TIMEOUT_S below is tighter)
# Everything one request asks of the database (server selection, connecting,
# every command) shares this deadline, so a server that hangs rather than
# refuses still gets a 503 well inside 10 s.  Queries inherit what is left of
# it as their maxTimeMS, which makes it the effective query cap.
REQUEST_TIMEOUT_S = 8.0

# MongoDB server error codes (src/mongo/base/error_codes.yml in the server's source).
USER_NOT_FOUND = 11
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
MAX_TIME_MS_EXPIRED = 50
DUPLICATE_KEY = 11000
_AUTH_FAILED = {AUTHENTICATION_FAILED, USER_NOT_FOUND}
# The server is busy, stepping down or failing over: the same request can
# succeed shortly, so these are 503s.
_SERVER_BUSY = {
    6,  # HostUnreachable
    7,  # HostNotFound
    89,  # NetworkTimeout
    91,  # ShutdownInProgress
    189,  # PrimarySteppedDown
    262,  # ExceededTimeLimit
    9001,  # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
}
# pymongo's own refusal to send a command once the request's deadline is spent
# (code 50, raised in the client, never by the server).  The time went on
# something other than the query, typically retries of a read against a busy
# or failing-over server, so it is the database's failure, not the caller's.
_DEADLINE_SPENT_IN_DRIVER = "would exceed time limit"
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class SecretSource(Protocol):
    """Where the client's credentials come from (a :class:`chalicelib.secrets.SecretsLoader`)."""

    def get_json(self, secret_id: str) -> dict[str, Any]: ...

    def invalidate(self, secret_id: str) -> None: ...


def find_ca_file(name: str) -> str:
    """The CA bundle: as given, at the package root, or in the project's vendor/."""
    candidates = [Path(name)]
    if not Path(name).is_absolute():
        candidates += [_PACKAGE_ROOT / name, _PACKAGE_ROOT / "vendor" / name]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    log.error(
        "TLS is on but the DocumentDB CA bundle %r was not found (looked in %s)",
        name, ", ".join(map(str, candidates)),
    )  # fmt: skip
    # Paths go to the log only.
    raise ConfigurationError("TLS is on but the DocumentDB CA bundle (DOCDB_CA_FILE) was not found")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def build_client(
    secret: dict[str, Any],
    ca_file: str,
    pool_size: int,
    write_concern: dict[str, Any] | None = None,
    **extra: Any,
) -> Any:
    """A MongoClient for the credentials in ``secret`` (DocumentDB's own shape).

    Every write it makes (inserts, updates, deletes, undos, transactions)
    inherits ``write_concern``, by default ``w: "majority", j: true``: a 2xx
    is only sent once the write is journaled.  ``extra`` goes to MongoClient
    as is (tests pass ``event_listeners``).
    """
    from pymongo import MongoClient

    try:
        host = secret["host"]
        port = int(secret.get("port", 27017))
        username, password = secret["username"], secret["password"]
        if not all(isinstance(v, str) and v for v in (host, username, password)):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        log.error("the DocumentDB secret lacks host, port, username or password")
        raise ConfigurationError(
            "the DocumentDB secret must hold host, port, username and password"
        ) from None
    options: dict[str, Any] = {
        "retryWrites": False,
        "maxPoolSize": pool_size,
        "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
        "connectTimeoutMS": CONNECT_TIMEOUT_MS,
        "socketTimeoutMS": SOCKET_TIMEOUT_MS,
        "appname": "docdb-rest",
        # One monitoring connection and no separate RTT connection, as the
        # driver does by itself on Lambda: a container holds at most
        # pool size + 1 connections to the server.
        "serverMonitoringMode": "poll",
    }
    concern = DEFAULT_WRITE_CONCERN if write_concern is None else write_concern
    if "w" in concern:
        options["w"] = concern["w"]
    if "j" in concern:
        options["journal"] = concern["j"]
    if "wtimeout" in concern:
        options["wTimeoutMS"] = concern["wtimeout"]
    options.update(extra)
    if _truthy(secret.get("ssl", False)):
        options.update(tls=True, tlsCAFile=find_ca_file(ca_file))
    if secret.get("replicaSet"):
        options["replicaSet"] = secret["replicaSet"]
    else:
        # One endpoint (DocumentDB's cluster endpoint follows the primary):
        # talk to it directly.  With discovery, one odd hello (a server
        # shutting down answers without its set name) drops the only host
        # from the topology for good, and the container never recovers.
        options["directConnection"] = True
    return MongoClient(host, port, username=username, password=password, **options)


class DocdbConnection:
    """The container's MongoClient, built on first use and healed on rotation."""

    def __init__(
        self,
        secrets: SecretSource,
        secret_id: str,
        ca_file: str,
        pool_size: int = 2,
        factory: Callable[[dict[str, Any], str, int], Any] = build_client,
        deadline_on_writes: bool = True,
        journal_after_commit: bool = False,
    ) -> None:
        self._secrets = secrets
        self._secret_id = secret_id
        self._ca_file = ca_file
        self._pool_size = pool_size
        self._factory = factory
        self._deadline_on_writes = deadline_on_writes
        # SecantusDB (the local stand-in) acknowledges a commit with j: true
        # before its journal is on disk; one journaled write after it flushes
        # the journal (DOCDB_JOURNAL_AFTER_COMMIT, on in the local stage only).
        self.journal_after_commit = journal_after_commit
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    secret = self._secrets.get_json(self._secret_id)
                    self._client = self._factory(secret, self._ca_file, self._pool_size)
        return self._client

    def cursor_key(self) -> bytes:
        """The key this stage signs DocumentDB cursors with.

        Derived from the DocumentDB secret's password, which every container
        of the stage reads anyway and no caller knows: no new secret, no new
        infrastructure.  Rotating the password retires outstanding cursors (a
        400 asking to start again).
        """
        import hashlib
        import hmac

        password = self._secrets.get_json(self._secret_id).get("password")
        if not isinstance(password, str) or not password:
            log.error("the DocumentDB secret lacks host, port, username or password")
            raise ConfigurationError("the DocumentDB secret must hold host, port, username and password")
        return hmac.new(password.encode("utf-8", "surrogatepass"), b"docdb-rest cursor key v1", hashlib.sha256).digest()

    def close(self) -> None:
        """Close the client, if one was built; the next call builds another."""
        with self._lock:
            old, self._client = self._client, None
        if old is not None:
            old.close()

    def reset(self) -> None:
        """Drop the client and the cached secret; the next call rebuilds both."""
        with self._lock:
            old, self._client = self._client, None
            self._secrets.invalidate(self._secret_id)
        if old is not None:
            old.close()

    def run(self, operation: Callable[[Any], T], write: bool = False) -> T:
        """``operation(client)``, with driver failures turned into HTTP errors.

        An authentication failure happens before any command runs, so the
        operation is safely tried once more with freshly read credentials.
        Both tries share one deadline of ``REQUEST_TIMEOUT_S``, which the
        driver also sends as each command's ``maxTimeMS``.  DocumentDB
        documents ``maxTimeMS`` for reads only, so a stage can keep writes
        out of the deadline (``DOCDB_DEADLINE_ON_WRITES=false``): they are
        then bounded by the server selection, connect and socket timeouts.
        """
        import pymongo

        if write and not self._deadline_on_writes:
            return self._run(operation)
        with pymongo.timeout(REQUEST_TIMEOUT_S):
            return self._run(operation)

    def _run(self, operation: Callable[[Any], T]) -> T:
        from bson.errors import BSONError
        from pymongo import errors

        for attempt in (1, 2):
            try:
                return operation(self.client())
            except errors.OperationFailure as exc:
                if exc.code in _AUTH_FAILED and attempt == 1:
                    log.warning("DocumentDB rejected the credentials; re-reading the secret")
                    self.reset()
                    continue
                raise _http_error(exc) from None
            except errors.WaitQueueTimeoutError:
                log.warning("no DocumentDB connection free within the deadline")
                raise ServiceUnavailableError("the database connections are all busy; try again shortly") from None
            except errors.ConnectionFailure as exc:
                if exc.timeout and not isinstance(exc, errors.ServerSelectionTimeoutError):
                    # Connected, sent, and no answer in time: the query ran out
                    # of time, which "unreachable" would misreport.
                    log.warning("DocumentDB did not answer within the deadline: %s", type(exc).__name__)
                    raise ServiceUnavailableError(
                        f"the database did not answer within this request's {REQUEST_TIMEOUT_S:g} s limit; "
                        "narrow the query, or try again shortly"
                    ) from None
                log.warning("DocumentDB unreachable: %s", type(exc).__name__)
                raise ServiceUnavailableError("the database is unreachable; try again shortly") from None
            except errors.ConfigurationError as exc:
                log.error("DocumentDB client misconfigured: %s", exc)
                raise ConfigurationError("the database connection is misconfigured") from None
            except errors.DocumentTooLarge:
                raise BadRequestError("a document is larger than the database's 16 MB limit") from None
            except errors.InvalidName:
                raise BadRequestError("the database cannot use that name") from None
            except (BSONError, OverflowError, UnicodeError) as exc:
                log.info("a value the driver cannot encode: %s", type(exc).__name__)
                raise BadRequestError("the database cannot store a value in the request") from None
        raise AssertionError("unreachable")


# What a refusal means, in this API's words: the server's own message names
# its internals ("Plan executor error …", index names), so callers get this
# and the error's code name instead.
_REFUSALS = {
    2: "a value is not valid where it is used",
    9: "the database could not parse the request",
    14: "an operator met a value of the wrong type (for example $inc on a string)",
    15: "a value is out of range or overflows",
    28: "a path cannot be created because part of it is not an object",
    40: "two update operators change the same field",
    52: "a field name starts with $",
    56: "a field name is empty",
    66: "the update would change _id, which never changes",
    160: "a pipeline stage is not valid",
    168: "an expression operator is not valid",
}


def refusal(code: Any, code_name: Any = None) -> str:
    """A caller's description of the server refusing a request with ``code``."""
    text = _REFUSALS.get(code, "the database refused the request")
    if isinstance(code_name, str) and code_name.isalnum() and len(code_name) <= 64:
        return f"{text} ({code_name})"
    return text


def _refuses_our_user(code: Any) -> bool:
    return code in _AUTH_FAILED or code == UNAUTHORIZED


def refuses_the_request(exc: Any) -> bool:
    """Whether a server error (an ``OperationFailure``) refuses the request itself: a 4xx, not a failing server.

    Not the credentials or a busy server (503s, as :func:`_http_error` answers
    them), nor a time limit, which a transaction's write answers as a 503 itself.
    """
    return not (_refuses_our_user(exc.code) or exc.code in _SERVER_BUSY or exc.code == MAX_TIME_MS_EXPIRED)


def _http_error(exc: Any) -> Exception:
    code = exc.code
    message = (exc.details or {}).get("errmsg") or str(exc)  # for the log and checks, never the caller
    log.info("DocumentDB refused a request: code %s %s", code, message[:300])
    if _refuses_our_user(code):
        log.error("DocumentDB refused the configured user (code %s)", code)
        return ConfigurationError("the database refused the configured credentials")
    if code in _SERVER_BUSY:
        return ServiceUnavailableError("the database is busy or failing over; try again shortly")
    if code == MAX_TIME_MS_EXPIRED and _DEADLINE_SPENT_IN_DRIVER in message:
        log.warning("DocumentDB did not answer within the request's deadline")
        return ServiceUnavailableError("the database did not answer in time; try again shortly")
    if code == MAX_TIME_MS_EXPIRED:
        return BadRequestError(
            f"the query ran past its {REQUEST_TIMEOUT_S:g} s limit; narrow the filter or use an index"
        )
    if code == DUPLICATE_KEY:
        return ConflictError("a document with that _id exists already")
    return BadRequestError(refusal(code, (exc.details or {}).get("codeName")))
