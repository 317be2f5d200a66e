"""tools/moto_server.py: the local stack's TransactWriteItems costs its items and rolls back item by item,
and its Scan costs the page, not the table.

Most tests run moto's DynamoDB backend in this process with the patch
installed (and undone after the test); the ``stack`` tests talk to the moto
server the ``stack`` fixture starts through tools/local_stack.py.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import math
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
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
    monkeypatch.undo()

    original_scan = models.Table.scan

    def scan(self: Any, *args: Any, **kwargs: Any) -> Any:  # a scan that no longer takes moto's parameters
        return original_scan(self, *args, **kwargs)

    monkeypatch.setattr(models.Table, "scan", scan)
    with pytest.raises(RuntimeError, match=re.escape("Table.scan takes (self, args, kwargs)")):
        moto_server.install()
    monkeypatch.undo()

    def scan_sorting_itself(
        self: Any,
        filters: Any,
        limit: Any,
        exclusive_start_key: Any,
        filter_expression: Any = None,
        index_name: Any = None,
        consistent_read: Any = False,
        projection_expression: Any = None,
        segments: Any = (None, None),
    ) -> Any:  # fmt: skip  (moto's parameters, but not its walk)
        return original_scan(self, filters, limit, exclusive_start_key, filter_expression, index_name)

    monkeypatch.setattr(models.Table, "scan", scan_sorting_itself)
    with pytest.raises(RuntimeError, match="no longer walks all_items"):
        moto_server.install()
    monkeypatch.undo()

    # moto's writers of a table's items, as this module knows them, less one: as if moto had a writer it does not.
    known = {module: lines[:-1] for module, lines in moto_server._ITEM_WRITES.items()}
    monkeypatch.setattr(moto_server, "_ITEM_WRITES", known)
    with pytest.raises(RuntimeError, match=re.escape("somewhere other than Table.put_item/delete_item")):
        moto_server.install()


@contextlib.contextmanager
def _scratch_table(dynamodb: Any, prefix: str) -> Iterator[str]:
    """A new hash-only table (key ``id``) on the stack's moto, deleted afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )  # fmt: skip
    try:
        yield name
    finally:
        dynamodb.delete_table(TableName=name)


def test_local_stack_runs_the_patched_moto(stack: Stack) -> None:
    """A transaction moto refuses midway (two operations in one entry) leaves nothing behind, as on DynamoDB.

    moto as released raises that refusal after writing the entries before it, without its rollback.
    """
    dynamodb = stack.dynamodb
    with _scratch_table(dynamodb, "moto_tx") as name:
        dynamodb.put_item(TableName=name, Item={**key("a"), "v": {"S": "old"}})
        two_in_one = {"Put": {"TableName": name, "Item": key("b")}, "Delete": {"TableName": name, "Key": key("a")}}
        with pytest.raises(dynamodb.exceptions.ClientError, match="can only contain one of"):
            dynamodb.transact_write_items(
                TransactItems=[{"Put": {"TableName": name, "Item": {**key("a"), "v": {"S": "new"}}}}, two_in_one]
            )
        assert dynamodb.get_item(TableName=name, Key=key("a"))["Item"] == {**key("a"), "v": {"S": "old"}}
        assert "Item" not in dynamodb.get_item(TableName=name, Key=key("b"))


SCANNED = "scanned"
PAD = "x" * 4000  # 300 items of 4-10 KB: a page without Limit stops at moto's 1 MB


def scanned_key(i: int, ranged: bool) -> dict[str, Any]:
    """Keys whose order is not the order they are written in; numbers negative and positive as sort keys."""
    if ranged:
        return {"pk": {"S": f"p{i * 7 % 13:02d}"}, "sk": {"N": str((i // 13) * 10 - 95)}}
    return {"pk": {"S": f"item-{i * 7919 % 1000:03d}-{i}"}}


def scanned_item(i: int, ranged: bool, version: str = "v1") -> dict[str, Any]:
    return {**scanned_key(i, ranged), "n": {"N": str(i % 50)}, "tag": {"S": ("even", "odd")[i % 2]},
            "version": {"S": version}, "pad": {"S": PAD + "y" * (i % 7 * 1000)}}  # fmt: skip


SCANS: list[dict[str, Any]] = [
    {},  # no Limit: the 1 MB limit ends each page
    {"Limit": 7},
    {"Limit": 50, "FilterExpression": "n < :x", "ExpressionAttributeValues": {":x": {"N": "20"}}},
    {"Limit": 25, "ProjectionExpression": "n, tag"},
    {"Limit": 11, "Segment": 1, "TotalSegments": 3},
    {"Limit": 9, "ScanFilter": {"tag": {"AttributeValueList": [{"S": "even"}], "ComparisonOperator": "EQ"}}},
    {"Limit": 300},
]


def change_between_pages(client: Any, ranged: bool, page: int, start_key: dict[str, Any], written: list[int]) -> None:
    """Writes between two pages: new items, deletions (the next page's start key too), changes in place."""
    i = page * 37 % 300
    if page % 3 == 0:
        written.append(written[-1] + 1)
        client.put_item(TableName=SCANNED, Item=scanned_item(written[-1], ranged))
    if page % 4 == 1:
        client.delete_item(TableName=SCANNED, Key=start_key)
        client.delete_item(TableName=SCANNED, Key=scanned_key(i, ranged))
    if page % 5 == 2:
        client.update_item(TableName=SCANNED, Key=scanned_key(i + 1, ranged), UpdateExpression="SET n = :n",
                           ExpressionAttributeValues={":n": {"N": "7"}})  # fmt: skip
        client.put_item(TableName=SCANNED, Item=scanned_item(i + 2, ranged, version="v2"))


def page_through(client: Any, ranged: bool, scan: dict[str, Any], written: list[int]) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    start_key = None
    while len(pages) < 500:
        response = client.scan(TableName=SCANNED, **scan, **({"ExclusiveStartKey": start_key} if start_key else {}))
        response.pop("ResponseMetadata")
        pages.append(response)
        start_key = response.get("LastEvaluatedKey")
        if start_key is None:
            return pages
        change_between_pages(client, ranged, len(pages), start_key, written)
    raise AssertionError("the scan never ended")


def scan_story(ranged: bool) -> list[list[dict[str, Any]]]:
    """Every page of each of SCANS, in turn, on one table of 300 items that changes between pages."""
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name=REGION, endpoint_url=f"https://dynamodb.{REGION}.amazonaws.com",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        client.create_table(
            TableName=SCANNED, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}]
            + ([{"AttributeName": "sk", "KeyType": "RANGE"}] if ranged else []),
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}]
            + ([{"AttributeName": "sk", "AttributeType": "N"}] if ranged else []),
        )  # fmt: skip
        for first in range(0, 300, 25):
            client.batch_write_item(RequestItems={SCANNED: [
                {"PutRequest": {"Item": scanned_item(i, ranged)}} for i in range(first, first + 25)
            ]})  # fmt: skip
        written = [299]
        return [page_through(client, ranged, scan, written) for scan in SCANS]


@pytest.mark.parametrize("ranged", [False, True], ids=["hash-only", "hash-and-range"])
def test_scan_pages_are_moto_own(ranged: bool) -> None:
    """Every page, its keys, counts and LastEvaluatedKey, as moto's own scan answers, while the table changes."""
    theirs = scan_story(ranged)
    undo = moto_server.install()
    try:
        ours = scan_story(ranged)
    finally:
        undo()

    assert len(theirs[0]) >= 3, "without Limit, pages end at 1 MB (else this test does not see that limit)"
    assert all(len(pages) >= 2 for pages in theirs), "every scan has a page that starts at a key"
    for scan, our_pages, their_pages in zip(SCANS, ours, theirs, strict=True):
        assert [page.get("LastEvaluatedKey") for page in our_pages] == [
            page.get("LastEvaluatedKey") for page in their_pages
        ], scan
        assert our_pages == their_pages, scan


class Calls:
    """Wraps a function and counts the calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.count = 0
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


def test_a_scan_page_from_the_middle_of_5000_items_costs_a_page(patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dynamodb = backend(fillers=5000)

    def scan(start_key: dict[str, Any] | None) -> tuple[list[Any], int, dict[str, Any] | None]:
        result: tuple[list[Any], int, dict[str, Any] | None] = dynamodb.scan(
            TABLE, {}, 100, start_key, None, {}, {}, None, False, None, (None, None)
        )
        return result

    scan(None)  # a first page, as GET /link's
    middle = key("filler-4999")  # "filler-4999" sorts after about half of "filler-0".."filler-4999"
    compared = Calls(monkeypatch, models.Table, "_item_comes_before_dct")
    visited = Calls(monkeypatch, models.Item, "is_within_segment")
    ordered = Calls(monkeypatch, models.DynamoType, "__lt__")
    items, scanned, last = scan(middle)

    assert len(items) == 100 and scanned == 100 and last is not None
    assert items[0].hash_key.value == "filler-5"
    assert compared.count <= 2 * math.ceil(math.log2(5000)), "the start found by bisection, not by a walk"
    assert visited.count <= 101, "moto's walk sees the page and the item after it"
    assert ordered.count <= compared.count, "the table not sorted again"


def test_local_stack_scans_from_the_start_key(stack: Stack) -> None:
    """The stack's moto walks a page from its start key (it says so in /moto-api/data.json), not the table."""
    dynamodb = stack.dynamodb
    with _scratch_table(dynamodb, "moto_scan") as name:
        for first in range(0, 300, 25):
            dynamodb.batch_write_item(RequestItems={name: [
                {"PutRequest": {"Item": key(f"{i:03d}")}} for i in range(first, first + 25)
            ]})  # fmt: skip
        page = dynamodb.scan(TableName=name, Limit=100)
        page = dynamodb.scan(TableName=name, Limit=100, ExclusiveStartKey=page["LastEvaluatedKey"])
        assert [item["id"]["S"] for item in page["Items"]] == [f"{i:03d}" for i in range(100, 200)]

        moto = http.client.HTTPConnection("127.0.0.1", stack.moto.port, timeout=60)
        try:
            moto.request("GET", "/moto-api/data.json")
            tables = [t for t in json.load(moto.getresponse())["dynamodb"]["Table"] if t.get("name") == name]
        finally:
            moto.close()
        assert len(tables) == 1
        assert tables[0].get("moto_server_scan") == {"start": 100, "items": 300}, "moto's scan walked from item 0"
