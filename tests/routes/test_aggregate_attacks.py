"""POST …/_aggregate under hostile input: odd text in every slot a stage takes is a 400, never a 500."""

from __future__ import annotations

import pytest

from tests.support import ADMIN, send

SURROGATE = "\\ud800"  # as the JSON escape a client sends: an unpaired surrogate once parsed

# Every string a stage takes outside the expressions and filters the allowlist walks.
TEXT_SLOTS = {
    "$bucketAuto.granularity": '{"$bucketAuto": {"groupBy": "$n", "buckets": 2, "granularity": "%s"}}',
    "$count": '{"$count": "%s"}',
    "$unwind": '{"$unwind": "$%s"}',
    "$unwind.includeArrayIndex": '{"$unwind": {"path": "$n", "includeArrayIndex": "%s"}}',
    "$unset": '{"$unset": "%s"}',
    "$sort": '{"$sort": {"%s": 1}}',
    "$lookup.from": '{"$lookup": {"from": "%s", "localField": "a", "foreignField": "b", "as": "j"}}',
    "$lookup.as": '{"$lookup": {"from": "x", "localField": "a", "foreignField": "b", "as": "%s"}}',
    "$unionWith": '{"$unionWith": "%s"}',
    "$graphLookup.depthField": '{"$graphLookup": {"from": "x", "startWith": "$a", "connectFromField": "a", '
    '"connectToField": "b", "as": "g", "depthField": "%s"}}',
}


@pytest.mark.parametrize("stage", TEXT_SLOTS.values(), ids=TEXT_SLOTS.keys())
def test_an_unpaired_surrogate_in_any_stage_is_400(client, stack, collection, stage):
    stack.mongo.blog[collection].insert_many([{"_id": i, "n": i} for i in range(3)])
    raw = ('{"pipeline": [' + stage % SURROGATE + "]}").encode()
    response = send(client, "POST", f"/docdb/blog/{collection}/_aggregate", raw=raw, headers=ADMIN)
    assert response.status_code == 400, response.body
    assert b"Unicode" in response.body
