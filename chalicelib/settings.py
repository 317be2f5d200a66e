"""What the stage's environment says, read once, lazily, in one place.

Chalice's test client sets a stage's environment variables only while a
request runs, so nothing here is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import ConfigurationError

DEFAULT_CA_FILE = "global-bundle.pem"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


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
        )

    def require(self, name: str) -> str:
        """The named setting, or a configuration error naming its variable."""
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"{name.upper()} is not set for this stage")
        return value
