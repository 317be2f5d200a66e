"""moto's server with DynamoDB transactions and scans that cost what DynamoDB's do.

    python -m tools.moto_server -H 127.0.0.1 -p PORT     (what tools/local_stack.py's Moto runs)

:func:`install`, then moto's own ``moto.server:main`` (the ``moto_server``
script) with the same arguments.

moto's ``DynamoDBBackend.transact_write_items`` deep-copies every table a
transaction names before it starts, and when the transaction is cancelled
puts those copies back.  So a transaction costs time in proportion to the
items in those tables (a few hundred items: 10-20 ms for a two-item
transaction, against 3.5 ms for a PutItem), and a cancelled one throws away
whatever another client wrote to those tables while it ran.  DynamoDB does
neither.  :func:`install` keeps moto's method and every error it returns,
and changes what happens around it:

- Before moto's method runs, each item the transaction puts, updates or
  deletes is remembered as it is (or as absent).  A ConditionCheck writes
  nothing, so its item is not.
- While moto's method runs, in that thread only, ``copy.deepcopy`` of a
  ``Table`` in ``moto.dynamodb.models`` returns the table itself: moto's
  snapshot costs nothing and its rollback puts back the same object.  Every
  other deep copy (of items, for backups) is a real one.
- If moto's method raises anything, the remembered items are put back with
  the backend's own ``put_item``/``delete_item``, and the same exception is
  raised.
- Transactions and every single-item write (PutItem, UpdateItem,
  DeleteItem, BatchWriteItem, PartiQL) hold one lock, so no write lands on
  an item between a transaction's snapshot and its rollback: DynamoDB would
  have failed one of the two with a conflict; here they run one after the
  other, and no acknowledged write is undone.

moto's ``Table.scan`` (a Scan without ``IndexName``) asks ``Table.all_items``
for every item, which sorts the whole table on every call, then walks that
list from the start, comparing each item with ``ExclusiveStartKey``
(``Table._item_comes_before_dct``) until it passes it.  So a page costs time
in proportion to the table (a page of 100 from 10,000 items: about 5x the
same page from 100).  DynamoDB reads only the page.  :func:`install` keeps
moto's scan and changes only the list it walks:

- Each table keeps the list ``all_items`` last returned (moto's own sort),
  with a counter that ``Table.put_item`` and ``Table.delete_item`` (every
  writer of a table's items in moto: PutItem, UpdateItem when it creates,
  DeleteItem, BatchWriteItem, transactions and their rollback, PartiQL,
  imports) bump after they run.  The list is used while the counter is
  unchanged and the table holds the same ``items`` dict, and rebuilt with
  moto's own ``all_items`` otherwise.  An UpdateItem of an existing item
  changes it in place (moto refuses to change key attributes), which moves
  nothing in an order by key, and the list holds the same item objects.
- With ``ExclusiveStartKey``, the scan's walk starts at the first item for
  which moto's own ``_item_comes_before_dct`` is false, found by bisection
  (about 14 comparisons for 10,000 items): every item before it is one
  moto's walk would skip, so the walk meets its start at once and does the
  rest (segments, ``Limit``, the 1 MB limit, ScanFilter, FilterExpression,
  projection, ``LastEvaluatedKey``, the counts) as moto does.  If a
  comparison raises (a malformed key), the walk gets the whole list and moto
  answers as it does.
- The counter, the check and the rebuild run under the same lock as the
  writes, so the list a scan walks is the table as it was at that moment:
  what moto's own ``all_items`` would have returned then.  A write landing
  after that is not in the list, as it is not in moto's.
- Each table's ``moto_server_scan`` (shown by moto's ``/moto-api/data.json``)
  says where the last table scan's walk started (``start``) in how many items
  (``items``); tests check the running server with it.

Written against moto 5.2.5 (requirements-dev.txt); :func:`install` refuses
to start if moto's internals no longer look as this module expects.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import pkgutil
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MOTO_PINNED = "5.2.5"
_WRITES = ("Put", "Update", "Delete")  # a ConditionCheck writes nothing
_LOCKED = ("put_item", "update_item", "delete_item", "execute_statement")

_LOCK = threading.RLock()  # re-entrant: moto's transaction calls the backend's own (locked) writes
_local = threading.local()


class _CopyExceptTables:
    """The ``copy`` that ``moto.dynamodb.models`` sees: the copy module, except during a transaction."""

    def __init__(self, real: Any, table_class: type) -> None:
        self._real = real
        self._table_class = table_class

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def deepcopy(self, x: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(x, self._table_class) and getattr(_local, "in_transaction", False):
            return x
        return self._real.deepcopy(x, memo)


@contextmanager
def _tables_not_copied() -> Iterator[None]:
    _local.in_transaction = True
    try:
        yield
    finally:
        _local.in_transaction = False


Kept = dict[tuple[Any, ...], tuple[str, dict[str, Any], Any]]


def _current(backend: Any, entry: Any) -> tuple[tuple[Any, ...], str, dict[str, Any], Any] | None:
    """The item an entry writes, as it is now (None if absent), or None for an entry that writes nothing."""
    if not isinstance(entry, dict) or len(entry) != 1:
        return None  # moto refuses the entry before writing it
    ((op_type, op),) = entry.items()
    if op_type not in _WRITES or not isinstance(op, dict):
        return None
    try:
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            attrs = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            key = {attr: op["Item"][attr] for attr in attrs}
        else:
            key = op["Key"]
        identity = (table.name, *backend.get_keys_value(table, key))
        item = backend.get_item(table.name, key)
    except Exception:  # moto's own loop fails on the same lookup, says why, and writes nothing for it
        return None
    return identity, table.name, key, item


def _remember(backend: Any, transact_items: Any) -> Kept:
    kept: Kept = {}
    for entry in transact_items if isinstance(transact_items, list) else []:
        found = _current(backend, entry)
        if found is not None and found[0] not in kept:
            identity, table_name, key, item = found
            # A real copy (Item's own deepcopy, cheap): moto's UpdateItem changes the stored item in place.
            kept[identity] = (table_name, key, copy.deepcopy(item))
    return kept


def _put_back(backend: Any, kept: Kept) -> None:
    for table_name, key, before in kept.values():
        now = backend.get_item(table_name, key)
        if before is None:
            if now is not None:
                backend.delete_item(table_name, key)
        elif now is None or now != before:
            # The attributes as moto holds them (DynamoType accepts a DynamoType), not via to_json,
            # which turns binary values nested in maps and lists from base64 text into bytes.
            backend.put_item(table_name, dict(before.attrs), overwrite=True)


def _transactional(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: Any) -> Any:
        with _LOCK:
            kept = _remember(self, transact_items)
            try:
                with _tables_not_copied():
                    return original(self, transact_items)
            except BaseException:
                _put_back(self, kept)
                raise

    return transact_write_items


def _locked(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    return write


_ORDER = "_moto_server_order"  # on a Table: (install, items dict, counter, the list all_items returned)
_COUNTER = "_moto_server_writes"  # on a Table: bumped by each put_item/delete_item
_TABLE_WRITES = ("put_item", "delete_item")


def _counted(original: Callable[..., Any]) -> Callable[..., Any]:
    """A Table writer that says it ran (under the lock, so no bump is lost and no scan sees half a write)."""

    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            try:
                return original(self, *args, **kwargs)
            finally:
                self.__dict__[_COUNTER] = self.__dict__.get(_COUNTER, 0) + 1

    return write


def _order(table: Any, all_items: Callable[[Any], list[Any]], install: object) -> list[Any]:
    """What moto's ``all_items`` returns now: the list kept on the table if nothing changed since, else a new one.

    The list is never changed once made, so a scan walking it is not disturbed by a rebuild.
    """
    with _LOCK:
        items, counter = table.items, table.__dict__.get(_COUNTER, 0)
        kept = table.__dict__.get(_ORDER)
        if kept is not None and kept[0] is install and kept[1] is items and kept[2] == counter:
            order: list[Any] = kept[3]
            return order
        order = all_items(table)
        table.__dict__[_ORDER] = (install, items, counter, order)
        return order


def _start(table: Any, order: list[Any], exclusive_start_key: Any) -> int:
    """The index of the first item moto's walk would not skip as at or before ``exclusive_start_key``."""
    hash_attrs, range_attrs = [table.hash_key_attr], [table.range_key_attr]  # as moto's scan passes them
    low, high = 0, len(order)
    try:
        while low < high:
            middle = (low + high) // 2
            if table._item_comes_before_dct(order[middle], exclusive_start_key, hash_attrs, range_attrs, True):
                low = middle + 1
            else:
                high = middle
    except Exception:  # moto's walk meets the same comparison (or none, in an empty segment) and answers as it does
        return 0
    return low


def _paged(original: Callable[..., Any], signature: inspect.Signature) -> Callable[..., Any]:
    """Table.scan: tells ``all_items`` (in this thread) which table scans and from which key."""

    @functools.wraps(original)
    def scan(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # moto raises the same
        arguments = bound.arguments
        if arguments.get("index_name"):
            return original(self, *args, **kwargs)
        _local.scan = (self, arguments["exclusive_start_key"])
        try:
            return original(self, *args, **kwargs)
        finally:
            _local.scan = None

    return scan


def _from_start(original: Callable[[Any], list[Any]], install: object) -> Callable[[Any], Any]:
    """Table.all_items: in a table scan, the kept order from the scan's start; anywhere else, moto's own."""

    @functools.wraps(original)
    def all_items(self: Any) -> Any:
        scan = getattr(_local, "scan", None)
        if scan is None or scan[0] is not self:
            return original(self)
        _local.scan = None  # once: moto's scan asks once, before its walk
        order = _order(self, original, install)
        start = 0 if scan[1] is None else _start(self, order, scan[1])
        self.moto_server_scan = {"start": start, "items": len(order)}
        return itertools.islice(order, start, None)

    return all_items


def _refuse(problem: str) -> RuntimeError:
    import moto

    return RuntimeError(
        f"tools/moto_server.py: {problem} in moto {moto.__version__}; this module was written against "
        f"moto {MOTO_PINNED} (requirements-dev.txt). Check moto's DynamoDBBackend.transact_write_items "
        "and Table.scan and update tools/moto_server.py (or drop what moto no longer needs: whole-table "
        "copies in transactions, a sort and walk of the whole table in each scan)."
    )


# Every line in moto.dynamodb.models that changes a Table's (or a StreamShard's) ``items``: the scan's kept
# order is right only if each change to a table's items goes through Table.put_item or Table.delete_item, or
# replaces ``items`` (a restored table's, made before any scan of it).
_ITEM_WRITE = re.compile(
    r"\.items\b(\[[^\]]*\])*\s*=(?!=)|\.items\b(\[[^\]]*\])*\.(pop|popitem|clear|update|setdefault)\(|\bdel\s+\S*\.items\b"
)
_ITEM_WRITES = {
    "moto.dynamodb.models.table": [
        "self.items = []",  # StreamShard's records
        "self.items = defaultdict(dict)",  # Table.__init__
        "self.items[hash_value][range_value] = item",  # Table.put_item
        "self.items[hash_value] = item",  # Table.put_item
        "item = self.items[hash_key].pop(range_key)",  # Table.delete_item
        "item = self.items.pop(hash_key)",  # Table.delete_item
        "self.items = copy.deepcopy(backup.table.items)",  # RestoredTable.__init__
        "self.items = copy.deepcopy(source.items)",  # RestoredPITTable.__init__
    ],
}


def _item_writes(models: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    modules = [models] + [
        __import__(info.name, fromlist=["_"]) for info in pkgutil.iter_modules(models.__path__, models.__name__ + ".")
    ]
    for module in modules:
        for line in inspect.getsource(module).splitlines():
            if _ITEM_WRITE.search(line):
                found.setdefault(module.__name__, []).append(line.split("#")[0].strip())
    return found


def _check_scan(models: Any) -> None:
    """Raise unless moto's Table.scan, all_items and item writers are what the scan patch relies on."""
    table = models.Table
    expected = {
        "scan": ["self", "filters", "limit", "exclusive_start_key", "filter_expression", "index_name",
                 "consistent_read", "projection_expression", "segments"],
        "all_items": ["self"],
        "_item_comes_before_dct": ["self", "item", "dct", "hash_key_attrs", "range_key_attrs", "scan_index_forward"],
        "put_item": ["self", "item_attrs"],
        "delete_item": ["self", "hash_key", "range_key"],
    }  # fmt: skip
    for name, parameters in expected.items():
        method = table.__dict__.get(name)
        if not inspect.isfunction(method):
            raise _refuse(f"Table.{name} is missing")
        found = list(inspect.signature(method).parameters)
        if found[: len(parameters)] != parameters or (name in ("scan", "all_items") and found != parameters):
            raise _refuse(f"Table.{name} takes ({', '.join(found)})")
    scan = inspect.getsource(table.scan)
    walk = scan.split("items = self.all_items()", 1)[-1]
    if (
        scan.count("self.all_items()") != 1
        or walk.count("for item in items:") != 1
        or "processing_previous_page = exclusive_start_key is not None" not in walk
        or "self._item_comes_before_dct(" not in walk
        or "hash_attrs = [self.hash_key_attr]" not in scan
        or "range_attrs = [self.range_key_attr]" not in scan
    ):
        raise _refuse("Table.scan no longer walks all_items() from the start, skipping up to ExclusiveStartKey")
    if "sorted(" not in inspect.getsource(table.all_items):
        raise _refuse("Table.all_items no longer sorts the table's items")
    if _item_writes(models) != _ITEM_WRITES:
        raise _refuse("moto.dynamodb.models changes a table's items somewhere other than Table.put_item/delete_item")


def _check(models: Any) -> None:
    """Raise unless moto's internals are what the patch relies on."""
    backend = getattr(models, "DynamoDBBackend", None)
    table_class = getattr(models, "Table", None)
    if backend is None or not isinstance(table_class, type):
        raise _refuse("moto.dynamodb.models has no DynamoDBBackend or Table")
    if getattr(models, "copy", None) is not copy:
        raise _refuse("moto.dynamodb.models no longer uses the module-level `copy`")
    expected = {
        "transact_write_items": ["self", "transact_items"],
        "get_table": ["self", "table_name"],
        "get_keys_value": ["self", "table", "keys"],
        "get_item": ["self", "table_name", "keys"],
        "delete_item": ["self", "table_name", "key"],
        "put_item": ["self", "table_name", "item_attrs"],
        "update_item": ["self", "table_name", "key"],
        "execute_statement": ["self", "statement"],
    }
    for name, parameters in expected.items():
        method = getattr(backend, name, None)
        if not inspect.isfunction(method):
            raise _refuse(f"DynamoDBBackend.{name} is missing")
        found = list(inspect.signature(method).parameters)
        if found[: len(parameters)] != parameters:
            raise _refuse(f"DynamoDBBackend.{name} takes ({', '.join(found)})")
    if "overwrite" not in inspect.signature(backend.put_item).parameters:
        raise _refuse("DynamoDBBackend.put_item has no `overwrite`")
    source = inspect.getsource(backend.transact_write_items)
    if "copy.deepcopy(" not in source or "self.tables[table_name] = " not in source:
        raise _refuse("DynamoDBBackend.transact_write_items no longer snapshots and restores whole tables")
    _check_scan(models)


def install() -> Callable[[], None]:
    """Patch moto's DynamoDB backend in this process; returns what undoes it."""
    from moto.dynamodb import models

    if isinstance(getattr(models, "copy", None), _CopyExceptTables):
        raise RuntimeError("tools/moto_server.py: already installed in this process")
    _check(models)
    backend, table = models.DynamoDBBackend, models.Table
    originals = {name: backend.__dict__[name] for name in ("transact_write_items", *_LOCKED)}
    table_originals = {name: table.__dict__[name] for name in ("scan", "all_items", *_TABLE_WRITES)}
    this_install = object()  # a list kept by an earlier install may have missed writes made while undone
    models.copy = _CopyExceptTables(copy, models.Table)  # type: ignore[assignment]
    backend.transact_write_items = _transactional(originals["transact_write_items"])  # type: ignore[method-assign]
    for name in _LOCKED:
        setattr(backend, name, _locked(originals[name]))
    for name in _TABLE_WRITES:
        setattr(table, name, _counted(table_originals[name]))
    table.scan = _paged(table_originals["scan"], inspect.signature(table_originals["scan"]))  # type: ignore[method-assign]
    table.all_items = _from_start(table_originals["all_items"], this_install)  # type: ignore[method-assign,assignment]

    def undo() -> None:
        models.copy = copy
        for name, method in originals.items():
            setattr(backend, name, method)
        for name, method in table_originals.items():
            setattr(table, name, method)

    return undo


def main(argv: list[str] | None = None) -> None:
    try:
        install()
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    from moto.server import main as moto_main

    moto_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
