"""moto's server with DynamoDB transactions that cost and roll back as DynamoDB's do.

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

Written against moto 5.2.5 (requirements-dev.txt); :func:`install` refuses
to start if moto's internals no longer look as this module expects.
"""

from __future__ import annotations

import copy
import functools
import inspect
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


def _refuse(problem: str) -> RuntimeError:
    import moto

    return RuntimeError(
        f"tools/moto_server.py: {problem} in moto {moto.__version__}; this module was written against "
        f"moto {MOTO_PINNED} (requirements-dev.txt). Check moto's DynamoDBBackend.transact_write_items "
        "and update tools/moto_server.py (or remove it if moto no longer copies whole tables)."
    )


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


def install() -> Callable[[], None]:
    """Patch moto's DynamoDB backend in this process; returns what undoes it."""
    from moto.dynamodb import models

    if isinstance(getattr(models, "copy", None), _CopyExceptTables):
        raise RuntimeError("tools/moto_server.py: already installed in this process")
    _check(models)
    backend = models.DynamoDBBackend
    originals = {name: backend.__dict__[name] for name in ("transact_write_items", *_LOCKED)}
    models.copy = _CopyExceptTables(copy, models.Table)  # type: ignore[assignment]
    backend.transact_write_items = _transactional(originals["transact_write_items"])  # type: ignore[method-assign]
    for name in _LOCKED:
        setattr(backend, name, _locked(originals[name]))

    def undo() -> None:
        models.copy = copy
        for name, method in originals.items():
            setattr(backend, name, method)

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
