"""What every write asks of the server: durability, and whether it carries the deadline.

Commands are watched with pymongo's command monitoring on a client built by
the app's own ``build_client`` against the session's SecantusDB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from bson import ObjectId
from pymongo import monitoring

import app as app_module
from chalicelib.docdb.client import DocdbConnection, build_client
from chalicelib.docdb.query import FindSpec, UpdateSpec
from chalicelib.docdb.service import CollectionService
from chalicelib.errors import ConfigurationError, ConflictError
from chalicelib.settings import Settings
from tests.support import FixedSecret

WRITES = ("insert", "update", "delete")


class _Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(dict(event.command))

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def named(self, *names: str) -> list[dict[str, Any]]:
        return [c for c in self.sent if next(iter(c), None) in names]


def _service(stack: Any, settings: Settings) -> tuple[CollectionService, _Commands, DocdbConnection]:
    commands = _Commands()
    factory = partial(build_client, write_concern=settings.docdb_write_concern, event_listeners=[commands])
    connection = DocdbConnection(
        FixedSecret(stack.secantus.secret()), "watched", str(stack.secantus.ca_file), 1, factory=factory,
        deadline_on_writes=settings.docdb_deadline_on_writes,
    )
    return CollectionService(connection), commands, connection


@pytest.fixture
def watched(stack) -> Iterator[Any]:
    built: list[DocdbConnection] = []

    def make(**env: str) -> tuple[CollectionService, _Commands]:
        service, commands, connection = _service(stack, Settings.from_env(env))
        built.append(connection)
        return service, commands

    yield make
    for connection in built:
        connection.close()


def _every_write(service: CollectionService, collection: str) -> None:
    first = ObjectId()
    service.insert("blog", collection, [{"_id": first, "n": 1}])
    service.insert("blog", collection, [{"_id": ObjectId(), "n": 2}, {"_id": ObjectId(), "n": 3}])
    # A batch refused half-way: its transaction is aborted, nothing is written.
    with pytest.raises(ConflictError):
        service.insert("blog", collection, [{"_id": ObjectId(), "n": 4}, {"_id": first, "n": 5}])
    service.update("blog", collection, UpdateSpec(filter={"n": 1}, update={"$set": {"m": 1}}, upsert=False))
    service.delete("blog", collection, {"n": 2})


def _durable_steps(commands: Any) -> list[dict[str, Any]]:
    """What must carry the write concern: writes outside a transaction, and every commit.

    A statement inside a transaction carries none (the server refuses one
    there); its transaction's commit does.
    """
    outside = [c for c in commands.named(*WRITES) if "autocommit" not in c]
    return outside + commands.named("commitTransaction")


def test_every_write_asks_for_majority_and_journal(watched, collection):
    service, commands = watched()
    _every_write(service, collection)
    steps = _durable_steps(commands)
    # The one-document insert and the delete; the commits of the batch insert and the update
    # (the refused batch is aborted: nothing to commit).
    assert len(steps) == 4, steps
    assert all(c.get("writeConcern") == {"w": "majority", "j": True} for c in steps), steps


def test_a_stage_can_leave_out_an_option_its_backend_refuses(watched, collection):
    service, commands = watched(DOCDB_WRITE_CONCERN='{"w": "majority"}')
    _every_write(service, collection)
    steps = _durable_steps(commands)
    assert steps and all(c.get("writeConcern") == {"w": "majority"} for c in steps), steps


@pytest.mark.parametrize(
    "raw", ['{"w": 0}', '{"j": "yes"}', '{"w": "all"}', '{"fsync": true}', "majority", "[1]", '{"wtimeout": -1}']
)
def test_a_write_concern_setting_that_is_not_safe_or_not_valid_is_a_configuration_error(raw):
    with pytest.raises(ConfigurationError):
        Settings.from_env({"DOCDB_WRITE_CONCERN": raw})


def test_by_default_writes_carry_the_deadline(watched, collection):
    service, commands = watched()
    _every_write(service, collection)
    writes = commands.named(*WRITES)
    assert writes and all(c.get("maxTimeMS", 0) > 0 for c in writes), writes


def test_a_stage_can_keep_the_deadline_on_reads_only(watched, collection):
    service, commands = watched(DOCDB_DEADLINE_ON_WRITES="false")
    _every_write(service, collection)
    service.find("blog", collection, FindSpec(filter={}, projection=None, sort=[], limit=5, skip=0, count=True))
    writes = commands.named(*WRITES)
    reads = commands.named("find", "aggregate")
    assert writes and not any("maxTimeMS" in c for c in writes), writes
    assert len(reads) == 2 and all(c.get("maxTimeMS", 0) > 0 for c in reads), reads


def test_a_stage_that_keeps_the_deadline_on_reads_only_keeps_it_off_keyed_writes_too(watched, collection):
    from chalice import Response

    from chalicelib import idempotency

    service, commands = watched(DOCDB_DEADLINE_ON_WRITES="false")
    for n in range(2):  # the first also creates the records' collection and index
        claim = idempotency.Claim(id=f"deadline-{collection}-{n}", scope="user:test", key=str(n),
                                  fingerprint={}, now=time.time())  # fmt: skip

        def run(session: Any, n: int = n) -> Response:
            service.insert("blog", collection, [{"n": n}], session)
            service.update("blog", collection, UpdateSpec(filter={"n": n}, update={"$set": {"m": 1}}, upsert=False),
                           session)  # fmt: skip
            return Response(body={"n": n}, status_code=201)

        assert service.records("blog", collection).execute(claim, run).status_code == 201
    writes = commands.named(*WRITES, "commitTransaction")
    assert len(writes) >= 8 and not any("maxTimeMS" in c for c in writes), writes


def test_the_app_builds_its_service_from_the_stage_settings(stack, fresh_app, monkeypatch):
    monkeypatch.setenv("DOCDB_DEADLINE_ON_WRITES", "false")
    monkeypatch.setenv("DOCDB_WRITE_CONCERN", '{"w": "majority"}')
    monkeypatch.setenv("DOCDB_SECRET_ID", "local/docdb")  # set by the local stage while a request runs
    connection = app_module.get_collection_service()._connection
    assert connection._deadline_on_writes is False
    assert connection._factory.keywords == {"write_concern": {"w": "majority"}}


@pytest.mark.parametrize("raw", ["maybe", "2"])
def test_a_deadline_setting_that_is_not_a_boolean_is_a_configuration_error(raw):
    with pytest.raises(ConfigurationError):
        Settings.from_env({"DOCDB_DEADLINE_ON_WRITES": raw})
