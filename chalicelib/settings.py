"""What the stage's environment says, read once, lazily, in one place.

Chalice's test client sets a stage's environment variables only while a
request runs, so nothing here is read at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import ConfigurationError

DEFAULT_CA_FILE = "global-bundle.pem"
# Acknowledged only once journaled on a majority: an acknowledged write
# survives the server being killed the moment it answered.
DEFAULT_WRITE_CONCERN: dict[str, Any] = {"w": "majority", "j": True}


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


def _write_concern(env: Mapping[str, str]) -> dict[str, Any]:
    """``DOCDB_WRITE_CONCERN``: a JSON object of ``w``, ``j`` and ``wtimeout``.

    Unset means ``{"w": "majority", "j": true}``.  An operator whose backend
    refuses an option leaves it out (``{"w": "majority"}``); ``{}`` means the
    server's default.  ``w: 0`` is refused: an unacknowledged write could be
    reported as stored when it was not.
    """
    raw = env.get("DOCDB_WRITE_CONCERN")
    if raw in (None, ""):
        return dict(DEFAULT_WRITE_CONCERN)
    problem = 'DOCDB_WRITE_CONCERN must be a JSON object such as {"w": "majority", "j": true}'
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigurationError(problem) from None
    if not isinstance(value, dict) or set(value) - {"w", "j", "wtimeout"}:
        raise ConfigurationError(problem)
    w, j, wtimeout = value.get("w", "majority"), value.get("j"), value.get("wtimeout")
    if "w" in value and not (w == "majority" or (type(w) is int and w >= 1)):
        raise ConfigurationError('DOCDB_WRITE_CONCERN "w" must be "majority" or a whole number of at least 1')
    if j is not None and not isinstance(j, bool):
        raise ConfigurationError('DOCDB_WRITE_CONCERN "j" must be true or false')
    if wtimeout is not None and (type(wtimeout) is not int or wtimeout < 0):
        raise ConfigurationError('DOCDB_WRITE_CONCERN "wtimeout" must be a whole number of milliseconds')
    return value


@dataclass(frozen=True)
class Settings:
    links_table: str | None
    movies_table: str | None
    idempotency_table: str | None
    docdb_secret_id: str | None
    api_users_secret_id: str | None
    docdb_ca_file: str
    secret_ttl_seconds: float
    docdb_pool_size: int
    docdb_write_concern: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_WRITE_CONCERN))
    # Whether writes run under the request's deadline (and so carry maxTimeMS);
    # off, only reads do and the driver's socket timeout bounds writes.
    docdb_deadline_on_writes: bool = True
    docdb_journal_after_commit: bool = False
    docs_assets_url: str | None = None
    data_api_return_type: str = "JSON"  # the Data API's format when Accept names none: JSON or EJSON
    # How long the users secret is kept; the local stage sets 0 so a user change applies at once.
    api_users_ttl_seconds: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            links_table=env.get("LINKS_TABLE") or None,
            movies_table=env.get("MOVIES_TABLE") or None,
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            docdb_secret_id=env.get("DOCDB_SECRET_ID") or None,
            api_users_secret_id=env.get("API_USERS_SECRET_ID") or None,
            docdb_ca_file=env.get("DOCDB_CA_FILE") or DEFAULT_CA_FILE,
            secret_ttl_seconds=_float(env, "SECRET_TTL_SECONDS", 300.0),
            docdb_pool_size=max(1, int(_float(env, "DOCDB_POOL_SIZE", 2))),  # 0 would mean unbounded
            docdb_write_concern=_write_concern(env),
            docdb_deadline_on_writes=_bool(env, "DOCDB_DEADLINE_ON_WRITES", True),
            docdb_journal_after_commit=_bool(env, "DOCDB_JOURNAL_AFTER_COMMIT", False),
            docs_assets_url=env.get("DOCS_ASSETS_URL") or None,
            data_api_return_type=env.get("DATA_API_RETURN_TYPE") or "JSON",
            api_users_ttl_seconds=_float(env, "API_USERS_TTL_SECONDS", _float(env, "SECRET_TTL_SECONDS", 300.0)),
        )

    def require(self, name: str) -> str:
        """The named setting, or a configuration error naming its variable."""
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"{name.upper()} is not set for this stage")
        return value
