"""Aggregation through the route against the same driver call (issue 15).

Target: the route's overhead on a page of 1,000 results is no more than the
find route's overhead for 1,000 documents, measured in the same run.
"""

from __future__ import annotations

import json

from bench import stack
from bench.data import documents
from bench.timing import Pair, Row, paired
from bench.warm import Harness, _ms

AGG = "agg"
GROUP = [{"$match": {"active": True}}, {"$group": {"_id": "$owner.name", "n": {"$sum": 1}, "qty": {"$sum": "$qty"}}},
         {"$sort": {"_id": 1}}]  # fmt: skip
PROJECT = [{"$project": {"sku": 1, "price": 1, "tags": 1, "owner": 1}}, {"$sort": {"sku": 1}}]


def _event(pipeline: list[dict[str, object]], limit: int) -> dict[str, object]:
    body = json.dumps({"pipeline": pipeline, "limit": limit})
    return stack.event("POST", f"/docdb/{stack.DB}/{AGG}/_aggregate", "/docdb/{db}/{collection}/_aggregate",
                       {"db": stack.DB, "collection": AGG}, body, True)  # fmt: skip


def aggregation(h: Harness, rows: list[Row], find1000: Pair) -> None:
    coll = h.mongo[stack.DB][AGG]
    coll.drop()
    coll.insert_many(documents(10_000, seed=11))
    coll.create_index([("sku", 1), ("_id", 1)])  # the page's sort, as a real collection would index it
    driver_group = [*GROUP[:-1], {"$sort": {"_id": 1}}, {"$limit": 101}]
    group = paired(h.request(_event(GROUP, 100)), lambda: list(coll.aggregate(driver_group)), reps=40, warmup=3)
    rows.append(Row("1", "aggregate $match+$group over 10,000", _ms(group.ours), _ms(group.theirs) + " (driver)",
                    f"+{_ms(group.diff)} ({group.ratio:.2f}×)", "", None))  # fmt: skip
    # The same shape the service sends: the pipeline, _id as the sort's last key, one more than the page.
    driver_project = [PROJECT[0], {"$sort": {"sku": 1, "_id": 1}}, {"$limit": 1001}]
    project = paired(h.request(_event(PROJECT, 1000)), lambda: list(coll.aggregate(driver_project)), reps=40, warmup=3)
    rows.append(Row("1", "aggregate page of 1,000 $project results", _ms(project.ours),
                    _ms(project.theirs) + " (driver)", f"+{_ms(project.diff)}",
                    f"≤ find 1000's +{_ms(find1000.diff)}", project.diff <= find1000.diff))  # fmt: skip
    coll.drop()
