"""POST …/_aggregate: sandboxed pipelines, grants on every collection read, paging."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.docdb import aggregation
from chalicelib.docdb.query import AggregateSpec
from chalicelib.errors import BadRequestError
from tests.support import ADMIN, basic, body, next_url, send

READER = basic("reader", "readerpass")  # demodb/democollection:r
DEMO_WRITER = basic("demowriter", "demowriterpass")  # demodb/*:rw
BLOG_READER = basic("blogreader", "blogreaderpass")  # blog/*:r, shared/notes:rw


def url(collection: str, db: str = "blog") -> str:
    return f"/docdb/{db}/{collection}/_aggregate"


def aggregate(client, collection, pipeline, headers=ADMIN, db="blog", limit=None, path=None):
    payload: dict[str, Any] = {"pipeline": pipeline}
    if limit is not None:
        payload["limit"] = limit
    return send(client, "POST", path or url(collection, db), payload, headers)


@pytest.fixture
def orders(stack, collection) -> str:
    stack.mongo.blog[collection].insert_many(
        [{"_id": i, "customer": f"c{i % 4}", "total": i, "tags": ["a", "b"]} for i in range(40)]
    )
    stack.mongo.blog[f"{collection}_customers"].insert_many(
        [{"_id": f"c{i}", "name": f"Customer {i}"} for i in range(4)]
    )
    return collection


def test_group_and_sort_return_the_results_as_an_array(client, orders):
    response = aggregate(client, orders, [
        {"$match": {"total": {"$gte": 10}}},
        {"$group": {"_id": "$customer", "n": {"$sum": 1}, "spent": {"$sum": "$total"}}},
        {"$sort": {"_id": 1}},
    ])  # fmt: skip
    assert response.status_code == 200, response.body
    kept = [i for i in range(40) if i >= 10]
    assert body(response) == [
        {"_id": f"c{k}", "n": sum(1 for i in kept if i % 4 == k), "spent": sum(i for i in kept if i % 4 == k)}
        for k in range(4)
    ]


def test_a_join_within_the_grants_runs(client, orders):
    response = aggregate(client, orders, [
        {"$match": {"_id": 5}},
        {"$lookup": {"from": f"{orders}_customers", "localField": "customer", "foreignField": "_id", "as": "who"}},
        {"$project": {"who.name": 1}},
    ], BLOG_READER)  # fmt: skip
    assert response.status_code == 200, response.body
    assert body(response) == [{"_id": 5, "who": [{"name": "Customer 1"}]}]


def test_a_read_grant_is_enough(client, stack):
    stack.mongo.demodb.democollection.insert_one({"_id": "agg-read", "n": 1})
    response = aggregate(client, "democollection", [{"$match": {"_id": "agg-read"}}], READER, db="demodb")
    assert response.status_code == 200, response.body
    assert body(response) == [{"_id": "agg-read", "n": 1}]
    narrow = send(client, "POST", "/docdb/demodb/democollection/_aggregate",
                  {"pipeline": [{"$match": {"_id": "agg-read"}}]}, READER)  # fmt: skip
    assert narrow.status_code == 200 and body(narrow) == body(response)


@pytest.mark.parametrize(
    "pipeline",
    [
        [{"$lookup": {"from": "other", "localField": "a", "foreignField": "b", "as": "j"}}],
        [{"$unionWith": "other"}],
        [{"$unionWith": {"coll": "democollection", "pipeline": [{"$unionWith": "other"}]}}],
        [{"$graphLookup": {"from": "other", "startWith": "$a", "connectFromField": "a", "connectToField": "b",
                           "as": "g"}}],
        [{"$facet": {"x": [{"$lookup": {"from": "other", "localField": "a", "foreignField": "b", "as": "j"}}]}}],
        [{"$lookup": {"from": "democollection", "as": "j", "pipeline": [
            {"$lookup": {"from": "other", "localField": "a", "foreignField": "b", "as": "k"}}]}}],
    ],
    ids=["lookup", "unionWith", "nested unionWith", "graphLookup", "in facet", "in lookup pipeline"],
)
def test_reading_a_collection_outside_the_grants_is_403_naming_it(client, stack, pipeline):
    response = aggregate(client, "democollection", pipeline, READER, db="demodb")
    assert response.status_code == 403, response.body
    assert "demodb/other" in body(response)["Message"]


def test_reserved_collections_stay_unreachable_through_a_join(client):
    pipeline = [{"$lookup": {"from": "system.users", "localField": "a", "foreignField": "b", "as": "j"}}]
    assert aggregate(client, "posts", pipeline).status_code == 403
    assert send(client, "POST", "/docdb/admin/system.users/_aggregate", {"pipeline": []}, ADMIN).status_code == 403


def test_aggregating_outside_the_grants_is_403(client):
    assert aggregate(client, "democollection", [], BLOG_READER, db="demodb").status_code == 403


@pytest.mark.parametrize("stage", sorted(aggregation.NEVER))
def test_every_refused_stage_is_400_naming_it_and_its_position(client, orders, stage):
    response = aggregate(client, orders, [{"$match": {}}, {stage: {}}])
    assert response.status_code == 400, response.body
    message = body(response)["Message"]
    assert stage in message and "pipeline[1]" in message


def test_a_refused_stage_deep_in_sub_pipelines_is_named_by_its_path(client, orders):
    pipeline = [{"$facet": {"f": [{"$lookup": {"from": "x", "as": "j", "pipeline": [{"$match": {}}, {"$out": "y"}]}}]}}]
    response = aggregate(client, orders, pipeline)
    assert response.status_code == 400
    assert "pipeline[0].$facet.f[0].$lookup.pipeline[1]" in body(response)["Message"]


@pytest.mark.parametrize(
    ("pipeline", "named"),
    [
        ([{"$setWindowFields": {}}], "$setWindowFields"),
        ([{"$project": {"x": {"$function": {"body": "f", "args": [], "lang": "js"}}}}], "$function"),
        ([{"$group": {"_id": None, "x": {"$accumulator": {}}}}], "$accumulator"),
        ([{"$match": {"$where": "1"}}], "$where"),
        ([{"$addFields": {"x": {"$code": "1"}}}], "$code"),
        ([{"$match": {"$expr": {"$eq": ["$$USER_ROLES", 1]}}}], "$$USER_ROLES"),
    ],
)
def test_expressions_pass_the_same_allowlist_as_filters(client, orders, pipeline, named):
    response = aggregate(client, orders, pipeline)
    assert response.status_code == 400, response.body
    assert named in body(response)["Message"]


@pytest.mark.parametrize(
    "payload",
    [
        {"pipeline": [{"$match": {}}] * (aggregation.MAX_STAGES + 1)},
        {"pipeline": [{"$facet": {f"f{i}": [{"$match": {}}] * 10 for i in range(5)}}]},
        {"pipeline": [{"$sample": {"size": aggregation.MAX_SAMPLE_SIZE + 1}}]},
        {"pipeline": [{"$bucketAuto": {"groupBy": "$a", "buckets": aggregation.MAX_BUCKETS + 1}}]},
        {"pipeline": [{"$limit": 0}]},
        {"pipeline": [{"$match": {}, "$sort": {"a": 1}}]},
        {"pipeline": {"$match": {}}},
        {"pipeline": [], "limit": 0},
        {"pipeline": [], "limit": 1001},
        {"pipeline": [], "extra": 1},
        [],
    ],
)
def test_pipelines_over_the_limits_or_malformed_are_400(client, orders, payload):
    response = send(client, "POST", url(orders), payload, ADMIN)
    assert response.status_code == 400, response.body


def test_paging_walks_2500_results_exactly_once(client, stack, collection):
    stack.mongo.blog[collection].insert_many([{"_id": i, "group": i % 7} for i in range(2500)])
    pipeline = [{"$project": {"group": 1}}, {"$sort": {"group": 1}}]
    seen: list[int] = []
    path: str | None = url(collection)
    pages = 0
    while path is not None:
        response = aggregate(client, collection, pipeline, limit=1000, path=path)
        assert response.status_code == 200, response.body
        seen += [doc["_id"] for doc in body(response)]
        path = next_url(response)
        pages += 1
    assert pages == 3
    assert sorted(seen) == list(range(2500)) and len(seen) == 2500


def test_a_cursor_of_another_pipeline_is_400(client, orders):
    first = aggregate(client, orders, [{"$sort": {"total": 1}}], limit=5)
    other = aggregate(client, orders, [{"$sort": {"total": -1}}], limit=5, path=next_url(first))
    assert other.status_code == 400


def test_pages_stay_within_the_response_budget(client, stack, collection):
    big = "x" * 1_000_000
    stack.mongo.blog[collection].insert_many([{"_id": i, "big": big} for i in range(8)])
    response = aggregate(client, collection, [{"$sort": {"_id": 1}}], limit=8)
    assert response.status_code == 200
    assert len(body(response)) < 8 and next_url(response) is not None


def test_a_stage_the_database_refuses_is_400_not_500(client, orders):
    # Valid for the sandbox, refused by the server: $group on an unknown accumulator shape.
    response = aggregate(client, orders, [{"$bucket": {"groupBy": "$total", "boundaries": [5, 1]}}])
    assert response.status_code == 400, response.body


# --- nothing outside the allowlist reaches the database ----------------------

_ALLOWED_STAGES = sorted(aggregation.STAGES)
_ANY_STAGES = _ALLOWED_STAGES + sorted(aggregation.NEVER) + ["$setWindowFields", "$geoNear", "$documents"]
_leaf = st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from(["$a", "b", "$$ROOT", "$$USER_ROLES", "$x.y"]))
_operator = st.sampled_from(["$sum", "$add", "$function", "$where", "$eq", "$concat", "$accumulator", "$expr"])
_value = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(["a", "b", "_id"]), _operator), inner, max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def _pipelines(draw: Any, depth: int = 0) -> list[dict[str, Any]]:
    stages = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(_ANY_STAGES))
        if name in ("$facet",) and depth < 2:
            spec: Any = {"f": draw(_pipelines(depth + 1))}
        elif name in ("$lookup", "$unionWith") and depth < 2:
            sub = draw(_pipelines(depth + 1))
            spec = {"from" if name == "$lookup" else "coll": "other", "as": "j", "pipeline": sub}
            if name == "$unionWith":
                spec.pop("as")
        else:
            spec = draw(_value)
        stages.append({name: spec})
    return stages


def _stage_names(pipeline: list[Any]) -> set[str]:
    names: set[str] = set()
    for stage in pipeline:
        for name, spec in stage.items():
            names.add(name)
            subs = list(spec.values()) if name == "$facet" and isinstance(spec, dict) else (
                [spec.get("pipeline", [])] if isinstance(spec, dict) else [])
            for sub in subs:
                names |= _stage_names(sub)
    return names


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pipeline=_pipelines())
def test_nothing_outside_the_allowlist_ever_reaches_the_database(watched_service, orders, pipeline):
    service, commands = watched_service
    commands.clear()
    try:
        spec = AggregateSpec.from_request({"pipeline": pipeline}, {})
    except BadRequestError:
        spec = None
    if spec is not None:
        # The server may refuse what the sandbox let through: a 400, never a 500.
        with contextlib.suppress(BadRequestError):
            service.aggregate("blog", orders, spec)
    sent = [c for c in commands if "aggregate" in c]
    if spec is None:
        assert sent == [], "a refused pipeline reached the database"
    for command in sent:
        names = _stage_names(command["pipeline"])
        assert names <= aggregation.STAGES, json.dumps(sorted(names - aggregation.STAGES))
