"""One document by _id (issue 13): GET by id against a find of one by _id, and what a condition costs.

Targets: ``GET /docdb/{db}/{collection}/{id}`` costs no more than
``GET /docdb/{db}/{collection}?filter={"_id": …}`` for the same document, and a
conditional write (``If-Match``) sends no more commands to the database than
the same write without it.  Commands are counted from the server's own
``opcounters``, so "no extra round trip" is a count, not a timing.

Run alone with ``python -m bench.documents``; ``make bench`` calls
:func:`documents` with the shared harness.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bench import stack
from bench.timing import Row, paired
from bench.warm import Harness, _ms

COLLECTION = "bydoc"
RESOURCE = "/docdb/{db}/{collection}/{id}"


def _document_event(
    method: str, doc_id: str, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    event = stack.event(method, f"/docdb/{stack.DB}/{COLLECTION}/{doc_id}", RESOURCE,
                        {"db": stack.DB, "collection": COLLECTION, "id": doc_id},
                        None if body is None else json.dumps(body), True)  # fmt: skip
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def _commands(h: Harness) -> int:
    counters = h.mongo.admin.command("serverStatus")["opcounters"]
    return sum(int(counters[k]) for k in ("query", "insert", "update", "delete", "getmore", "command"))


def commands_per_call(h: Harness, call: Callable[[], Any], n: int = 50) -> float:
    """Database commands one call sends, on average (the serverStatus read itself subtracted)."""
    before = _commands(h)
    for _ in range(n):
        call()
    return (_commands(h) - before - 1) / n


def documents(h: Harness, rows: list[Row]) -> None:
    from bson import ObjectId

    coll = h.mongo[stack.DB][COLLECTION]
    coll.drop()
    oid = str(ObjectId())
    # Written through the route, so it carries a revision, as documents the API writes do.
    h.call(_document_event("PUT", oid, {"sku": "bench", "qty": 0, "tags": ["a", "b"], "price": 9.5}), 201)

    by_id = h.request(_document_event("GET", oid))
    by_filter = h.request(stack.docdb_event("GET", urlencode({"filter": json.dumps({"_id": {"$oid": oid}})}),
                                            collection=COLLECTION))  # fmt: skip
    read = paired(by_id, by_filter, reps=600, warmup=20)
    rows.append(Row("1", "GET by id vs find 1 by _id", _ms(read.ours), _ms(read.theirs) + " (collection route)",
                    f"{read.diff:+.3f} ms ({read.ratio:.2f}×)", "no more than the find", read.diff <= 0))  # fmt: skip

    tag = [h.call(_document_event("GET", oid))["headers"]["ETag"]]

    def conditional() -> None:
        response = h.call(_document_event("PATCH", oid, {"$inc": {"qty": 1}}, {"If-Match": tag[0]}))
        tag[0] = response["headers"]["ETag"]

    def unconditional() -> None:
        h.call(_document_event("PATCH", oid, {"$inc": {"qty": 1}}))

    # Alternating, each side's write changes the revision, so both sides read the current
    # one directly first (the same extra read on both; it is not part of the request).
    def conditional_fresh() -> None:
        tag[0] = '"r' + str(coll.find_one({"_id": ObjectId(oid)}, {"_rev": 1})["_rev"]) + '"'
        conditional()

    def unconditional_fresh() -> None:
        coll.find_one({"_id": ObjectId(oid)}, {"_rev": 1})
        unconditional()

    write = paired(conditional_fresh, unconditional_fresh, reps=400, warmup=10)
    rows.append(Row("1", "PATCH by id: If-Match vs none", _ms(write.ours), _ms(write.theirs) + " (no condition)",
                    f"{write.diff:+.3f} ms ({write.ratio:.2f}×)", "", None))  # fmt: skip
    tag[0] = h.call(_document_event("GET", oid))["headers"]["ETag"]
    with_condition = commands_per_call(h, conditional)
    without = commands_per_call(h, unconditional)
    rows.append(Row("1", "PATCH by id: database commands per request", f"{with_condition:.2f} (If-Match)",
                    f"{without:.2f} (no condition)", f"{with_condition - without:+.2f}",
                    "no extra round trip", with_condition <= without))  # fmt: skip
    get_commands = commands_per_call(h, by_id)
    find_commands = commands_per_call(h, by_filter)
    rows.append(Row("1", "GET by id: database commands per request", f"{get_commands:.2f}",
                    f"{find_commands:.2f} (find 1 by _id)", f"{get_commands - find_commands:+.2f}",
                    "no more than the find", get_commands <= find_commands))  # fmt: skip
    coll.drop()


def main() -> None:
    from bench.timing import table

    with stack.backends() as backends:
        os.environ.update(backends.env())
        rows: list[Row] = []
        h = Harness(backends)
        documents(h, rows)
        h.mongo.close()
    print(table(rows))


if __name__ == "__main__":
    main()
