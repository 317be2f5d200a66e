"""One budget per request (chalicelib/docdb/budget.py), replayed through the routes against the real servers.

The outside attack doubled a string once per nested ``$lookup`` through its
``let`` variables (26 levels built 33 M characters), split ``$concat``s of
one field over many expressions, and sent 5 MB of short regular
expressions that kept the scanner busy for seconds before any deadline.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.docdb import allowlist, budget
from tests.support import ADMIN, body, get, send


def aggregate(client, collection: str, pipeline: list[Any]) -> Any:
    return send(client, "POST", f"/docdb/blog/{collection}/_aggregate", {"pipeline": pipeline}, ADMIN)


def doubling(levels: int, other: str) -> list[dict[str, Any]]:
    """``levels`` nested $lookups, each binding v<k+1> to $$v<k> twice over; the innermost adds the result."""
    pipeline: list[dict[str, Any]] = [{"$addFields": {"out": {"$strLenCP": f"$$v{levels}"}}}]
    for level in range(levels, 0, -1):
        built = ["$s", "$s"] if level == 1 else [f"$$v{level - 1}", f"$$v{level - 1}"]
        let = {f"v{level}": {"$concat": built}}
        pipeline = [{"$lookup": {"from": other, "as": f"j{level}", "let": let, "pipeline": pipeline}}]
    return pipeline


@pytest.fixture
def seeded(stack, collection) -> str:
    stack.mongo.blog[collection].insert_many([{"_id": i, "s": "ab", "a": i, "b": f"b{i}"} for i in range(3)])
    stack.mongo.blog[f"{collection}_others"].insert_many([{"_id": i, "a": i, "b": f"b{i}"} for i in range(3)])
    return collection


# --- amplification through $lookup's let --------------------------------------------------


def test_a_string_doubled_through_nested_lookups_is_a_400(client, seeded):
    response = aggregate(client, seeded, doubling(6, f"{seeded}_others"))
    assert response.status_code == 400, response.body
    message = body(response)["Message"]
    assert "let variable" in message and "$lookup" in message, message
    assert "pipeline[0].$lookup.pipeline[0].$lookup" in message, message


def test_a_few_doublings_still_run(client, seeded):
    response = aggregate(client, seeded, [*doubling(3, f"{seeded}_others"), {"$sort": {"_id": 1}}])
    assert response.status_code == 200, response.body
    assert body(response)[0]["j1"][0]["j2"][0]["j3"][0]["out"] == 16  # "ab" doubled three times


def test_a_lookup_with_let_and_a_match_on_its_variables_passes(client, seeded):
    pipeline = [
        {"$lookup": {"from": f"{seeded}_others", "as": "same", "let": {"ka": "$a", "kb": "$b"}, "pipeline": [
            {"$match": {"$expr": {"$and": [{"$eq": ["$a", "$$ka"]}, {"$eq": ["$b", "$$kb"]}]}}},
            {"$project": {"_id": 0, "tag": {"$concat": ["$b", "-", "$$kb"]}}},
        ]}},
        {"$sort": {"_id": 1}},
    ]  # fmt: skip
    response = aggregate(client, seeded, pipeline)
    assert response.status_code == 200, response.body
    assert [d["same"] for d in body(response)] == [[{"tag": f"b{i}-b{i}"}] for i in range(3)]


# --- what a whole request builds -----------------------------------------------------------


def sixteen_refs() -> dict[str, Any]:
    return {"$concat": ["$s"] * allowlist.MAX_BUILT_FIELD_REFS}


def test_builds_spread_over_stages_are_counted_together(client, seeded):
    stages = budget.MAX_REQUEST_BUILT_REFS // allowlist.MAX_BUILT_FIELD_REFS
    fits = [{"$addFields": {f"x{i}": sixteen_refs()}} for i in range(stages)]
    assert aggregate(client, seeded, fits).status_code == 200
    response = aggregate(client, seeded, [*fits, {"$addFields": {"y": {"$concat": ["$s"]}}}])
    assert response.status_code == 400, response.body
    assert f"the limit is {budget.MAX_REQUEST_BUILT_REFS} per request" in body(response)["Message"]


def test_builds_spread_over_facets_are_counted_together(client, seeded):
    facets = {f"f{i}": [{"$project": {"x": sixteen_refs()}}] for i in range(5)}
    response = aggregate(client, seeded, [{"$facet": facets}])
    assert response.status_code == 400, response.body
    assert "per request" in body(response)["Message"]


def test_a_filter_and_an_update_share_the_budget(client, seeded):
    """Parsed by separate calls: only the request-wide budget (app.py's middleware) adds them up."""
    built = {"$expr": {"$eq": [sixteen_refs(), "x"]}}
    half = budget.MAX_REQUEST_BUILT_REFS // allowlist.MAX_BUILT_FIELD_REFS // 2
    update = [{"$set": {f"x{i}": sixteen_refs() for i in range(half + 1)}}]
    payload = {"filter": {"$and": [built] * half}, "update": update}
    response = send(client, "PATCH", f"/docdb/blog/{seeded}?all=true", payload, ADMIN)
    assert response.status_code == 400, response.body
    assert "per request" in body(response)["Message"]


def test_one_field_concatenated_700000_times_is_a_quick_400(client, seeded):
    flt = {"$expr": {"$eq": [{"$concat": ["$s"] * 700_000}, "x"]}}
    started = time.monotonic()
    response = send(client, "DELETE", f"/docdb/blog/{seeded}", {"filter": flt}, ADMIN)
    assert response.status_code == 400, response.body
    assert "700000 field references" in body(response)["Message"]
    assert time.monotonic() - started < 10


def test_many_small_concats_in_one_body_are_a_400(client, seeded):
    one = {"$expr": {"$eq": [sixteen_refs(), "x"]}}
    flt = {"$and": [one] * 35_000}  # under 5 MB, 560,000 references in all
    response = send(client, "DELETE", f"/docdb/blog/{seeded}", {"filter": flt}, ADMIN)
    assert response.status_code == 400, response.body
    assert "per request" in body(response)["Message"]


# --- regular expressions in all ------------------------------------------------------------


def patterns(total: int, size: int = 500) -> list[str]:
    return [f"^{i:05d}" + "a" * (size - 6) for i in range(total // size + 1)]


def test_a_body_of_many_regexes_is_a_quick_400(client, seeded):
    flt = {"$or": [{"n": {"$regex": p}} for p in patterns(5_000_000 - 100_000, allowlist.MAX_REGEX_CHARS)]}
    started = time.monotonic()
    response = send(client, "DELETE", f"/docdb/blog/{seeded}", {"filter": flt}, ADMIN)
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.body
    assert f"the limit is {budget.MAX_REQUEST_REGEX_CHARS} in all" in body(response)["Message"]
    assert elapsed < 10


def test_regexes_under_the_total_pass(client, seeded):
    flt = {"$or": [{"b": {"$regex": p}} for p in patterns(budget.MAX_REQUEST_REGEX_CHARS - 1000)] + [{"b": "b1"}]}
    response = send(client, "DELETE", f"/docdb/blog/{seeded}", {"filter": flt}, ADMIN)
    assert response.status_code == 200, response.body
    assert body(response) == {"deleted_count": 1}


def test_regexes_spread_over_stages_are_counted_together(client, seeded):
    stages = [{"$match": {"b": {"$not": {"$regex": p}}}} for p in patterns(budget.MAX_REQUEST_REGEX_CHARS + 1)]
    response = aggregate(client, seeded, stages)
    assert response.status_code == 400, response.body
    assert "regular expressions of this request" in body(response)["Message"]


def test_regexes_in_a_filter_and_an_update_are_counted_together(client, seeded):
    half = patterns(budget.MAX_REQUEST_REGEX_CHARS // 2)
    payload = {
        "filter": {"$or": [{"b": {"$regex": p}} for p in half]},
        "update": {"$pull": {f"t{i}": {"$regex": p} for i, p in enumerate(half)}},
    }
    response = send(client, "PATCH", f"/docdb/blog/{seeded}?all=true", payload, ADMIN)
    assert response.status_code == 400, response.body
    assert "regular expressions of this request" in body(response)["Message"]


def test_regexes_in_a_get_filter_are_counted(client, seeded):
    flt = json.dumps({"$or": [{"b": {"$regex": p}} for p in patterns(budget.MAX_REQUEST_REGEX_CHARS + 1)]})
    response = get(client, f"/docdb/blog/{seeded}", {"filter": flt}, ADMIN)
    assert response.status_code == 400, response.body
    assert "regular expressions of this request" in body(response)["Message"]
