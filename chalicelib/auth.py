"""HTTP Basic credentials, scrypt password hashes, and grants.

API users live in a Secrets Manager secret::

    {"users": {"apiuser": {"password": "scrypt$16384$8$1$<salt b64>$<hash b64>",
                           "grants": ["*/*:rw"],
                           "api_keys": [{"id": "<12 hex>", "sha256": "<hex>", "label": "…", "created": "…"}]}}}

Comparison is constant-time, an unknown user is checked against a dummy hash
so it costs what a wrong password costs, and a successful check is cached
in-process for the authorizer TTL so warm requests skip scrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import ForbiddenError

log = logging.getLogger(__name__)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MAX_HEADER_CHARS = 1024
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def max_password_bytes(user: str) -> int:
    """The longest password (in UTF-8 bytes) whose Basic header for ``user`` fits MAX_HEADER_CHARS."""
    token_chars = MAX_HEADER_CHARS - len("Basic ")
    return token_chars // 4 * 3 - len(user.encode()) - 1  # base64 packs 3 bytes in 4; one byte for ':'


class InvalidHashError(ValueError):
    pass


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash in the ``scrypt$N$r$p$salt$hash`` form API.md gives."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password.encode(), salt, n, r, p, HASH_BYTES)
    return "$".join(
        ["scrypt", str(n), str(r), str(p), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    )


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * n * r * p)


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        params = int(n), int(r), int(p)
        salt_bytes = base64.b64decode(salt, validate=True)
        digest_bytes = base64.b64decode(digest, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidHashError("not a scrypt$N$r$p$salt$hash string") from None
    # Bounds keep a hand-edited secret from turning one login into a DoS.
    if (
        scheme != "scrypt"
        or not (2 <= params[0] <= 2**20 and params[0] & (params[0] - 1) == 0)
        or not 1 <= params[1] <= 32
        or not 1 <= params[2] <= 16
        or not 16 <= len(digest_bytes) <= 64
        or not salt_bytes
    ):
        raise InvalidHashError("scrypt parameters out of range")
    return (*params, salt_bytes, digest_bytes)


def verify_password(password: str, encoded: str) -> bool:
    n, r, p, salt, digest = _parse_hash(encoded)
    candidate = _scrypt(password.encode(), salt, n, r, p, len(digest))
    return hmac.compare_digest(candidate, digest)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic …`` value, else None."""
    # Basic credentials are base64, so a valid header is ASCII; anything else
    # (a non-ASCII byte, a lone surrogate) would break the decoding below.
    if not header or len(header) > MAX_HEADER_CHARS or not header.isascii():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    # RFC 7617 forbids control characters, and they matter here: scrypt's
    # HMAC zero-pads its key, so "password\0" would verify as "password".
    if not sep or not user or not password or any(ord(c) < 32 or ord(c) == 127 for c in decoded):
        return None
    return user, password


# API keys: "<id>.<secret>", the id 12 hex digits (to find the record and to revoke it by), the
# secret 32 random bytes.  Stored as SHA-256 of the whole key.  A slow hash such as scrypt
# protects guessable passwords from offline guessing; a 256-bit random key cannot be guessed,
# so one fast hash is as safe and keeps every request's check cheap.
API_KEY_ID_CHARS = 12
_NO_KEY = bytes(32)  # what an unknown id is compared against: no key hashes to it


def new_api_key() -> tuple[str, dict[str, str]]:
    """A new key and the record to store for it (the key itself is never stored)."""
    import secrets

    key_id = secrets.token_hex(API_KEY_ID_CHARS // 2)
    key = f"{key_id}.{secrets.token_urlsafe(32)}"
    return key, {"id": key_id, "sha256": hashlib.sha256(key.encode()).hexdigest()}


def api_key_id(key: str | None) -> str | None:
    """The id part of something shaped like an API key, else None."""
    if not key or len(key) > MAX_HEADER_CHARS or not key.isascii():
        return None
    key_id, sep, rest = key.partition(".")
    if not sep or len(key_id) != API_KEY_ID_CHARS or not rest:
        return None
    return key_id


@dataclass(frozen=True)
class Grant:
    database: str
    collection: str
    write: bool

    @classmethod
    def parse(cls, text: str) -> Grant:
        """``database/collection:r`` or ``…:rw``; ``*`` matches any name."""
        names, sep, access = text.partition(":")
        database, slash, collection = names.partition("/")
        if not sep or not slash or access not in ("r", "rw") or not database or not collection:
            raise ValueError(f"grant {text!r} is not database/collection:r or :rw")
        if "," in names or any(c.isspace() for c in names):
            # Grants reach the views comma-joined: a comma in a name would split it.
            raise ValueError(f"grant {text!r} has a comma or white space in a name")
        return cls(database, collection, access == "rw")

    def covers(self, database: str, collection: str, method: str) -> bool:
        return (
            self.database in ("*", database)
            and self.collection in ("*", collection)
            and (self.write or method in READ_METHODS)
        )

    def __str__(self) -> str:
        return f"{self.database}/{self.collection}:{'rw' if self.write else 'r'}"


def parse_grants(text: str) -> list[Grant]:
    """Grants from the comma-joined form the authorizer passes to the views."""
    return [Grant.parse(part) for part in text.split(",") if part]


def allowed(grants: list[Grant], database: str, collection: str, method: str) -> bool:
    return any(g.covers(database, collection, method) for g in grants)


@dataclass(frozen=True)
class Principal:
    """Who the authorizer let in, and what their grants allow.

    API Gateway hands the authorizer's context to the function as strings, so
    grants travel comma-joined (the form :meth:`UserDirectory.authenticate`
    returns) and are parsed here, once per request.  No grants means no access.
    """

    user: str
    grants: tuple[Grant, ...]

    @classmethod
    def from_context(cls, context: dict[str, Any] | None) -> Principal:
        """The caller described by a request's ``requestContext.authorizer``."""
        authorizer = (context or {}).get("authorizer") or {}
        return cls(str(authorizer.get("principalId") or ""), tuple(parse_grants(authorizer.get("grants") or "")))

    def require(self, database: str, collection: str, method: str) -> None:
        """403 unless a grant covers ``method`` on ``database/collection``."""
        if not allowed(list(self.grants), database, collection, method):
            raise ForbiddenError(f"your grants do not allow {method} on {database}/{collection}")
def _user_entry(secret: dict[str, Any], user: str) -> object:
    users = secret.get("users")
    return users.get(user) if isinstance(users, dict) else None


class UserDirectory:
    """Checks Basic credentials against the users secret.

    ``load_users`` returns the secret's JSON (``{"users": {...}}``); it is
    called on every check that misses the cache, so pass a TTL-cached loader.
    """

    def __init__(
        self,
        load_users: Callable[[], dict[str, Any]],
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_users = load_users
        self._cache_seconds = cache_seconds
        self._clock = clock
        # Keyed by an HMAC of the header under a per-process key, so the cache
        # never holds a password in a form that could be read back.
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, tuple[float, str, str, object]] = {}
        self._lock = threading.Lock()
        self._dummy_hash: str | None = None
        self._keys: tuple[object, dict[str, tuple[str, bytes]]] | None = None

    def authenticate(self, header: str | None) -> tuple[str, str] | None:
        """``(user, grants)`` for valid credentials, else None; grants comma-joined."""
        credentials = parse_basic(header)
        if credentials is None:
            return None
        assert header is not None
        key = hmac.new(self._cache_key, header.encode(), hashlib.sha256).digest()
        # A cached success holds only while the user's entry in the secret just
        # read is the one it was checked against: a changed password or grant,
        # or a removed user, ends it at the next read of the secret (and a
        # re-read that changed nothing for this user costs no scrypt run).
        secret = self._load_users()
        now = self._clock()
        hit = self._verified.get(key)
        if hit is not None and hit[0] > now:
            entry = _user_entry(secret, hit[1])
            if entry is hit[3] or (entry is not None and entry == hit[3]):
                return hit[1], hit[2]
        result = self._check(secret, *credentials)
        if result is not None:
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = (now + self._cache_seconds, *result, _user_entry(secret, result[0]))
        return result

    def _check(self, secret: dict[str, Any], user: str, password: str) -> tuple[str, str] | None:
        users = secret.get("users")
        entry = users.get(user) if isinstance(users, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
            verify_password(password, self._dummy())  # same cost as a wrong password
            return None
        try:
            if not verify_password(password, entry["password"]):
                return None
            grants = [str(Grant.parse(g)) for g in entry.get("grants", [])]
        except InvalidHashError:
            log.error("the users secret has a malformed password hash for %r", user)
            verify_password(password, self._dummy())  # no cheaper than a wrong password
            return None
        except (ValueError, TypeError, AttributeError):
            log.error("the users secret has malformed grants for %r", user)
            return None
        return user, ",".join(grants)

    def authenticate_key(self, key: str | None) -> tuple[str, str] | None:
        """``(user, grants)`` for a valid API key (see :func:`new_api_key`), else None."""
        key_id = api_key_id(key)
        secret = self._load_users()
        owner, stored = self._key_index(secret).get(key_id or "", (None, _NO_KEY))
        # Always one hash and one comparison, so an unknown id costs what a wrong key costs.
        candidate = hashlib.sha256((key or "").encode() if key_id else b"").digest()
        if not hmac.compare_digest(candidate, stored) or owner is None:
            return None
        try:
            grants = [str(Grant.parse(g)) for g in secret["users"][owner].get("grants", [])]
        except (ValueError, TypeError, AttributeError):
            log.error("the users secret has malformed grants for %r", owner)
            return None
        return owner, ",".join(grants)

    def _key_index(self, secret: dict[str, Any]) -> dict[str, tuple[str, bytes]]:
        """key id -> (user, SHA-256 of the key), rebuilt when the secret is re-read."""
        cached = self._keys
        if cached is not None and cached[0] is secret:
            return cached[1]
        index: dict[str, tuple[str, bytes]] = {}
        users = secret.get("users")
        for user, entry in users.items() if isinstance(users, dict) else ():
            records = entry.get("api_keys") if isinstance(entry, dict) else None
            for record in records if isinstance(records, list) else ():
                try:
                    index[record["id"]] = (user, bytes.fromhex(record["sha256"]))
                except (KeyError, TypeError, ValueError):
                    log.error("the users secret has a malformed API key record for %r", user)
        self._keys = (secret, index)
        return index

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(os.urandom(16).hex())
        return self._dummy_hash
