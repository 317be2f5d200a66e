"""tools/moto_server.py: the local stack's TransactWriteItems costs its items and rolls back item by item.

Most tests run moto's DynamoDB backend in this process with the patch
installed (and undone after the test); the last one talks to the moto server
the ``stack`` fixture starts through tools/local_stack.py.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.dynamodb import models
from moto.dynamodb.exceptions import TransactionCanceledException

from tests.support import ROOT, Stack
from tools import moto_server
from tools.local_stack import REGION

ACCOUNT = "123456789012"
TABLE = "things"


@pytest.fixture
def patched() -> Iterator[None]:
    undo = moto_server.install()
    yield
    undo()


def backend(fillers: int = 0) -> Any:
    """A fresh DynamoDB backend with one table (partition key ``id``) and ``fillers`` items."""
    dynamodb = models.DynamoDBBackend(REGION, ACCOUNT)
    dynamodb.create_table(
        name=TABLE, schema=[{"AttributeName": "id", "KeyType": "HASH"}], throughput=None,
        attr=[{"AttributeName": "id", "AttributeType": "S"}], global_indexes=None, indexes=None,
        streams=None, billing_mode="PAY_PER_REQUEST", sse_specification=None, tags=[],
        deletion_protection_enabled=False, warm_throughput=None,
    )  # fmt: skip
    for i in range(fillers):
        dynamodb.put_item(TABLE, {"id": {"S": f"filler-{i}"}, "n": {"N": str(i)}})
    return dynamodb


def key(name: str) -> dict[str, Any]:
    return {"id": {"S": name}}


def stored(dynamodb: Any) -> dict[str, Any]:
    """Every item, as moto answers a GetItem."""
    return {item.hash_key.value: item.to_json()["Attributes"] for item in dynamodb.get_table(TABLE).all_items()}


def held(dynamodb: Any) -> dict[str, Any]:
    """Copies of moto's own items: equal only if every attribute is held alike (binary as text or bytes)."""
    return {item.hash_key.value: copy.deepcopy(item) for item in dynamodb.get_table(TABLE).all_items()}


def put(name: str, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": {**key(name), "v": {"S": "new"}}, **extra}}


# Overwrites kept, creates new, changes in place (ADD to a set, SET in a map), deletes, then fails
# the record's condition as chalicelib/tables/idempotency.py's record does (ALL_OLD).
CANCELLED = [
    put("kept"),
    {"Update": {"TableName": TABLE, "Key": key("new"), "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": {"S": "new"}}}},
    {"Update": {"TableName": TABLE, "Key": key("changed"), "UpdateExpression": "SET m.b = :b ADD tags :t",
                "ExpressionAttributeValues": {":b": {"B": "AAEC"}, ":t": {"SS": ["c"]}}}},
    {"Delete": {"TableName": TABLE, "Key": key("deleted")}},
    {"ConditionCheck": {"TableName": TABLE, "Key": key("checked"), "ConditionExpression": "attribute_exists(id)"}},
    put("record", ConditionExpression="attribute_not_exists(id)", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
]  # fmt: skip


def cancel(dynamodb: Any) -> tuple[str, dict[str, Any], dict[str, Any], bool]:
    """Run CANCELLED on a fresh table: moto's error body, the items before and after, and whether moto holds
    them after exactly as before."""
    dynamodb.put_item(TABLE, {**key("kept"), "v": {"S": "old"}})
    dynamodb.put_item(TABLE, {**key("changed"), "m": {"M": {"a": {"B": "AQI="}}}, "tags": {"SS": ["a", "b"]}})
    dynamodb.put_item(TABLE, {**key("deleted"), "v": {"S": "old"}})
    dynamodb.put_item(TABLE, {**key("checked"), "v": {"S": "old"}})
    dynamodb.put_item(TABLE, {**key("record"), "status": {"N": "201"}, "body": {"S": "{}"}})
    before, exactly = stored(dynamodb), held(dynamodb)
    with pytest.raises(TransactionCanceledException) as cancelled:
        dynamodb.transact_write_items(CANCELLED)
    return cancelled.value.description, before, stored(dynamodb), held(dynamodb) == exactly


def test_cancelled_transaction_restores_items_and_answers_as_moto_does() -> None:
    description, before, after, _ = cancel(backend())  # moto as released: whole-table copies

    undo = moto_server.install()
    try:
        patched_description, patched_before, patched_after, unchanged = cancel(backend())
    finally:
        undo()

    assert patched_before == before
    assert patched_after == before, "every item as it was, the created one absent"
    assert "new" not in patched_after
    assert unchanged, "held as before, not merely rendered alike"
    assert patched_after == after
    assert patched_description == description
    assert '"Code": "ConditionalCheckFailed"' in patched_description
    assert '"Item": {"id": {"S": "record"}, "status": {"N": "201"}, "body": {"S": "{}"}}' in patched_description


class TableCopies:
    """Stands in for the ``copy`` moto.dynamodb.models sees; counts the Tables it is asked to copy and copies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked = 0
        self.made = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def deepcopy(self, x: Any, memo: Any = None) -> Any:
        result = self.inner.deepcopy(x, memo)
        if isinstance(x, models.Table):
            self.asked += 1
            self.made += result is not x
        return result


@pytest.fixture
def table_copies(patched: None, monkeypatch: pytest.MonkeyPatch) -> TableCopies:
    spy = TableCopies(models.copy)
    monkeypatch.setattr(models, "copy", spy)
    return spy


def test_transaction_on_a_1000_item_table_copies_no_table(table_copies: TableCopies) -> None:
    dynamodb = backend(fillers=1000)
    update = {"Update": {"TableName": TABLE, "Key": key("filler-7"), "UpdateExpression": "SET v = :v",
                         "ExpressionAttributeValues": {":v": {"S": "new"}}}}  # fmt: skip
    dynamodb.transact_write_items([put("a"), update])
    with pytest.raises(TransactionCanceledException):
        dynamodb.transact_write_items([put("b"), put("a", ConditionExpression="attribute_not_exists(id)")])

    assert table_copies.asked >= 2, "moto still asks for its whole-table snapshot (else this test sees nothing)"
    assert table_copies.made == 0
    items = stored(dynamodb)
    assert len(items) == 1001
    assert items["a"]["v"] == {"S": "new"} and items["filler-7"]["v"] == {"S": "new"}
    assert "b" not in items


def write_during(dynamodb: Any, name: str, action: Any) -> None:
    """Call ``action()`` right after the transaction's Put of ``name``: between its snapshot and its rollback."""
    original, done = dynamodb.put_item, threading.Event()

    def put_item(table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        result = original(table_name, item_attrs, *args, **kwargs)
        if not done.is_set() and item_attrs["id"] == key(name)["id"]:  # the Put, not the rollback's
            done.set()
            action()
        return result

    dynamodb.put_item = put_item


def test_write_to_another_item_during_a_cancelled_transaction_survives(patched: None) -> None:
    dynamodb = backend(fillers=10)
    dynamodb.put_item(TABLE, {**key("a"), "v": {"S": "old"}})
    other = {**key("other"), "v": {"S": "written meanwhile"}}
    write_during(dynamodb, "a", lambda: dynamodb.put_item(TABLE, other))

    with pytest.raises(TransactionCanceledException):
        dynamodb.transact_write_items([put("a"), put("filler-1", ConditionExpression="attribute_not_exists(id)")])

    items = stored(dynamodb)
    assert items["other"] == other
    assert items["a"] == {**key("a"), "v": {"S": "old"}}
    assert len(items) == 12


class WatchedLock:
    """tools.moto_server's lock, saying when a thread has to wait for it."""

    def __init__(self, settled: threading.Event) -> None:
        self.inner = threading.RLock()
        self.settled = settled

    def __enter__(self) -> None:
        if not self.inner.acquire(blocking=False):
            self.settled.set()
            self.inner.acquire()

    def __exit__(self, *exc: object) -> None:
        self.inner.release()


def test_another_threads_write_to_an_item_in_a_transaction_waits_and_is_kept(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled = threading.Event()  # the other thread waits for the lock, or has written
    monkeypatch.setattr(moto_server, "_LOCK", WatchedLock(settled))
    dynamodb = backend()
    dynamodb.put_item(TABLE, {**key("a"), "v": {"S": "old"}})
    theirs = {**key("a"), "v": {"S": "theirs"}}

    def their_write() -> None:
        models.DynamoDBBackend.put_item(dynamodb, TABLE, theirs)
        settled.set()

    thread = threading.Thread(target=their_write)

    def start_theirs() -> None:
        thread.start()
        assert settled.wait(timeout=30), "the other thread neither wrote nor waited"

    write_during(dynamodb, "a", start_theirs)
    with pytest.raises(TransactionCanceledException):
        dynamodb.transact_write_items([put("a"), put("b"), put("a2", ConditionExpression="attribute_exists(id)")])
    thread.join()

    items = stored(dynamodb)
    assert items["a"] == theirs, "their write came after the rollback, not before it"
    assert "b" not in items


def test_install_refuses_moto_internals_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = re.search(r"^moto\[server\]==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pinned is not None
    monkeypatch.delattr(models, "copy")
    with pytest.raises(RuntimeError, match=re.escape(f"moto {pinned[1]} (requirements-dev.txt)")):
        moto_server.install()
    monkeypatch.undo()

    monkeypatch.delattr(models.DynamoDBBackend, "transact_write_items")
    with pytest.raises(RuntimeError, match="transact_write_items is missing"):
        moto_server.install()


def test_local_stack_runs_the_patched_moto(stack: Stack) -> None:
    """A transaction moto refuses midway (two operations in one entry) leaves nothing behind, as on DynamoDB.

    moto as released raises that refusal after writing the entries before it, without its rollback.
    """
    dynamodb = stack.dynamodb
    name = f"moto_tx_{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )  # fmt: skip
    try:
        dynamodb.put_item(TableName=name, Item={**key("a"), "v": {"S": "old"}})
        two_in_one = {"Put": {"TableName": name, "Item": key("b")}, "Delete": {"TableName": name, "Key": key("a")}}
        with pytest.raises(dynamodb.exceptions.ClientError, match="can only contain one of"):
            dynamodb.transact_write_items(
                TransactItems=[{"Put": {"TableName": name, "Item": {**key("a"), "v": {"S": "new"}}}}, two_in_one]
            )
        assert dynamodb.get_item(TableName=name, Key=key("a"))["Item"] == {**key("a"), "v": {"S": "old"}}
        assert "Item" not in dynamodb.get_item(TableName=name, Key=key("b"))
    finally:
        dynamodb.delete_table(TableName=name)
