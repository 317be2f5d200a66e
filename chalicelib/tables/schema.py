"""The DynamoDB tables this API uses: written once, read by everything that names them.

The stores take their key from here; tools/create_tables.py creates tables
from it, the local stack seeds moto from it, and tools/package.py writes each
table's key schema into the packaged CloudFormation template (infra/ leaves
it out), so the key cannot differ between code, template and tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Table:
    setting: str  # the stage's environment variable that names the table
    key: str  # the string partition key, the table's only key
    resource: str  # its logical id in infra/resources.json
    ttl: str | None = None  # the attribute DynamoDB's TTL expires items by, if any

    def key_schema(self) -> dict[str, Any]:
        return key_schema(self.key)


def key_schema(key: str) -> dict[str, Any]:
    """``KeySchema`` and ``AttributeDefinitions`` of a table keyed by the string ``key``,
    as CreateTable and CloudFormation take them."""
    return {
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
    }


LINKS = Table("LINKS_TABLE", "link_id", "LinksTable")
MOVIES = Table("MOVIES_TABLE", "name", "MoviesTable")
# Idempotency-Key records of keyed writes on the tables above (chalicelib/tables/idempotency.py).
IDEMPOTENCY = Table("IDEMPOTENCY_TABLE", "id", "IdempotencyTable", ttl="expires_at")
TABLES = (LINKS, MOVIES, IDEMPOTENCY)
