"""Real local backends, started once per test session.

moto's server (DynamoDB, Secrets Manager) and a SecantusDB process with TLS
and SCRAM authentication, started by the same code as ``make run``.  Routes
are exercised through ``chalice.test.Client`` against them.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

import app as app_module
from tools import local_stack

ROOT = Path(__file__).resolve().parents[1]

USERS = {
    "apiuser": ("apipassword", ["*/*:rw"]),
    "reader": ("readerpass", ["demodb/democollection:r"]),
    "demowriter": ("demowriterpass", ["demodb/*:rw"]),
    "blogreader": ("blogreaderpass", ["blog/*:r", "shared/notes:rw"]),
}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("apiuser", "apipassword")


class Stack:
    """Handles on the running backends, for tests that inspect or break them."""

    def __init__(self, moto: local_stack.Moto, secantus: local_stack.Secantus) -> None:
        self.moto = moto
        self.secantus = secantus
        session = boto3.session.Session(
            region_name=local_stack.REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.dynamodb = session.client("dynamodb", endpoint_url=moto.endpoint)
        self.secrets = session.client("secretsmanager", endpoint_url=moto.endpoint)
        self._mongo: Any = None

    @property
    def mongo(self) -> Any:
        """A direct pymongo client, to check what the API stored."""
        if self._mongo is None:
            self._mongo = self.secantus.client()
        return self._mongo

    def seed(self) -> None:
        local_stack.seed(self.moto.endpoint, self.secantus, USERS)

    def empty_tables(self) -> None:
        for table, key in ((local_stack.LINKS_TABLE, "link_id"), (local_stack.MOVIES_TABLE, "name")):
            kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "#k",
                                      "ExpressionAttributeNames": {"#k": key}}
            while True:
                page = self.dynamodb.scan(**kwargs)
                for item in page["Items"]:
                    self.dynamodb.delete_item(TableName=table, Key=item)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reset_app() -> None:
    """Forget every client the app built, as a new Lambda container would."""
    for name in ("_SETTINGS", "_LINKS", "_MOVIES", "_SECRETS", "_USERS", "_COLLECTIONS"):
        old = getattr(app_module, name, None)
        connection = getattr(old, "_connection", None)
        if connection is not None and connection._client is not None:
            connection._client.close()
        setattr(app_module, name, None)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("local")
    with local_stack.backends(home, local_stack.free_port(), local_stack.free_port()) as (moto, secantus):
        os.environ.update(local_stack.aws_env(moto.endpoint))
        os.environ["DOCDB_CA_FILE"] = str(secantus.ca_file)
        stack = Stack(moto, secantus)
        stack.seed()
        reset_app()
        yield stack
        reset_app()


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app_module.app, stage_name="local", project_dir=str(ROOT)) as test_client:
        yield test_client


@pytest.fixture
def empty_tables(stack: Stack) -> Stack:
    stack.empty_tables()
    return stack


@pytest.fixture
def fresh_app() -> Iterator[None]:
    """A cold container before and after the test (for tests that change config)."""
    reset_app()
    yield
    reset_app()


@pytest.fixture
def collection() -> str:
    """A collection name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"
