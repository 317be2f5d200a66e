"""Idempotency-Key: a keyed write against the same write without a key.

    python -m bench.idempotency        # on its own (a small local stack)

For ``make bench``: :func:`idempotency_cost` adds its rows to the table, given
the warm harness (bench/warm.py).  The Lambda handler is called directly with
API Gateway events; keyed and unkeyed requests alternate (bench/timing.py),
and each keyed request carries a new key, so it runs rather than replays.

Besides time, it counts what each request sends to the backends (a pymongo
command listener, botocore's before-call hook): the unkeyed write must send
exactly what it sent before keys existed, and the keyed one says how many
round trips the key costs.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench import stack
from bench.timing import Pair, Row, median_ms, paired

TARGET_RATIO = 1.5
SECTION = "6"
_COMMANDS: list[str] = []


def _listener() -> Any:
    from pymongo import monitoring

    class CommandNames(monitoring.CommandListener):
        """Every command the process's clients start (registered before the app builds its client)."""

        def started(self, event: Any) -> None:
            if event.command_name not in _HANDSHAKE:
                _COMMANDS.append(event.command_name)

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    return CommandNames()


_HANDSHAKE = ("hello", "isMaster", "ismaster", "saslStart", "saslContinue", "ping", "endSessions", "buildInfo")


def listen() -> None:
    """Count the commands of every MongoClient built from now on (call before the first DocumentDB request)."""
    from pymongo import monitoring

    monitoring.register(_listener())


def _keyed(event: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    def fresh() -> dict[str, Any]:
        keyed = copy.copy(event)
        keyed["headers"] = {**event["headers"], "Idempotency-Key": str(uuid.uuid4())}
        keyed["multiValueHeaders"] = {k: [v] for k, v in keyed["headers"].items()}
        return keyed

    return fresh


@contextlib.contextmanager
def _dynamodb_calls(clients: list[Any]) -> Iterator[list[str]]:
    calls: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        calls.append(model.name)

    for client in clients:
        client.meta.events.register("before-call.dynamodb", hook)
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", hook)


def idempotency_cost(call: Callable[[dict[str, Any], int], Any], app_module: Any, rows: list[Row]) -> None:
    """Rows: each write keyed against unkeyed, its round trips, and a replay."""
    cases = [
        ("insert 1", stack.docdb_event("POST", body=json.dumps({"n": 1, "s": "x" * 100}), collection="idem"), 201),
        ("PATCH 1 doc", stack.docdb_event("PATCH", body=json.dumps({"filter": {"k": "one"},
                                                                   "update": {"$inc": {"n": 1}}}),
                                           collection="idem"), 200),
        ("POST /link", stack.event("POST", "/link", "/link", body=json.dumps({"link": "https://example.com/k"})), 201),
    ]  # fmt: skip
    call(stack.docdb_event("POST", body=json.dumps({"k": "one", "n": 0}), collection="idem"), 201)
    for name, event, status in cases:
        fresh = _keyed(event)
        pair = paired(lambda f=fresh, s=status: call(f(), s), lambda e=event, s=status: call(e, s), reps=200)
        met = pair.ratio <= TARGET_RATIO
        rows.append(Row(SECTION, f"keyed {name}", _ms(pair.ours), _ms(pair.theirs) + " (no key)",
                        f"+{_ms(pair.diff)} ({pair.ratio:.2f}×)", f"≤ {TARGET_RATIO}×", met))  # fmt: skip
        sent_plain, sent_keyed = _sent(app_module, lambda e=event, s=status: call(e, s)), _sent(
            app_module, lambda f=fresh, s=status: call(f(), s)
        )
        rows.append(Row(SECTION, f"  {name}: what each sends", " ".join(sent_keyed), " ".join(sent_plain) + " (no key)",
                        f"+{len(sent_keyed) - len(sent_plain)} round trips", "", None))  # fmt: skip
    floor = _driver_floor(app_module)
    rows.append(Row(SECTION, "  insert 1's commands alone, at the driver", _ms(floor.ours),
                    _ms(floor.theirs) + " (driver insert)", f"+{_ms(floor.diff)} ({floor.ratio:.2f}×)",
                    "", None))  # fmt: skip
    replay = stack.docdb_event("POST", body=json.dumps({"n": 2}), collection="idem")
    replay["headers"] = {**replay["headers"], "Idempotency-Key": "bench-replay"}
    call(replay, 201)
    replayed = median_ms(lambda: call(replay, 201), reps=200)
    rows.append(Row(SECTION, "  replay of a kept insert", _ms(replayed), "", "applies no write", "", None))


def _driver_floor(app_module: Any) -> Pair:
    """What the keyed insert's three commands cost with no handler around them, against one insert.

    The same client the app uses (its TLS, write concern and pool), the same
    documents: the part of the keyed insert's cost that the backend sets.
    """
    import pymongo
    from bson import ObjectId

    from chalicelib.docdb import idempotency

    client = app_module.get_collection_service()._connection.client()
    target = client[stack.DB]["idem"]
    records = client[idempotency.DATABASE][idempotency.COLLECTION]

    def keyed() -> None:
        with pymongo.timeout(8), client.start_session() as session:
            session.start_transaction()
            target.insert_one({"n": 1, "s": "x" * 100}, session=session)
            # As a record is kept: its created_at is what the TTL index removes it by, as it removes the app's.
            record = {"_id": str(ObjectId()), "created_at": datetime.datetime.now(datetime.UTC), "status": 201,
                      "body": "{}", "headers": {}}  # fmt: skip
            records.insert_one(record, session=session)
            session.commit_transaction()

    def plain() -> None:
        with pymongo.timeout(8):
            target.insert_one({"n": 1, "s": "x" * 100})

    return paired(keyed, plain, reps=200)


def _sent(app_module: Any, request: Callable[[], Any]) -> list[str]:
    """The backend calls one request makes, in order."""
    clients = [app_module.get_link_store()._client, app_module.get_table_records()._client]
    _COMMANDS.clear()
    with _dynamodb_calls(clients) as calls:
        request()
    return [*_COMMANDS, *calls]


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


def main() -> None:
    import os
    import tempfile
    from pathlib import Path

    from bench.timing import table
    from tools import local_stack

    listen()
    with (
        tempfile.TemporaryDirectory(prefix="docdb-rest-bench-idem-") as home,
        local_stack.backends(Path(home), local_stack.free_port(), local_stack.free_port()) as (moto, secantus),
    ):
        local_stack.seed(moto.endpoint, secantus, {stack.API_USER[0]: (stack.API_USER[1], stack.API_USER[2])})
        backends = stack.Backends(moto, secantus)
        os.environ.update(backends.env())
        import app as app_module

        context = stack.LambdaContext()

        def call(event: dict[str, Any], status: int) -> dict[str, Any]:
            response = app_module.app(event, context)
            if response["statusCode"] != status:
                what = f"{event['httpMethod']} {event['path']}"
                raise RuntimeError(f"{what}: {response['statusCode']} {response['body']}")
            return response

        rows: list[Row] = []
        idempotency_cost(call, app_module, rows)
        print(table(rows))


if __name__ == "__main__":
    main()
