"""Real local backends, started once per test session.

moto's server (DynamoDB, Secrets Manager) and a SecantusDB process with TLS
and SCRAM authentication, started by the same code as ``make run``.  Routes
are exercised through ``chalice.test.Client`` against them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.docdb.service import CollectionService
from tests.support import LOG_CAPTURE, ROOT, Stack, watched_connection
from tools import local_stack


def reset_app() -> None:
    """Forget every client the app built, as a new Lambda container would."""
    app_module.deps.reset()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("local")
    # Test commands on: fault tests arm the server's failCommand failpoint.
    ports = (local_stack.free_port(), local_stack.free_port())
    with local_stack.backends(home, *ports, secantus_args=["--enable-test-commands"]) as (moto, secantus):
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
def use() -> Iterator[Callable[..., None]]:
    """Swap built dependencies in for one test, ``use(links=store)``; undone after it."""
    with contextlib.ExitStack() as swaps:
        yield lambda **built: swaps.enter_context(app_module.deps.override(**built))


@pytest.fixture
def watched_service(stack: Stack) -> Iterator[tuple[CollectionService, list[dict[str, Any]]]]:
    """A collection service on the stack, and the list of every command its driver sends."""
    commands: list[dict[str, Any]] = []
    connection = watched_connection(stack, commands)
    yield CollectionService(connection), commands
    connection.reset()


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


# Our own loggers at DEBUG so every record our code could write is seen;
# libraries at what a deployed function would show.
_OWN_LOGGERS = ("chalicelib", "app", "tools", app_module.app.log.name)


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(LOG_CAPTURE)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for name in _OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run tests/test_logs.py after everything else, whatever was selected."""
    items.sort(key=lambda item: item.path.name == "test_logs.py")
