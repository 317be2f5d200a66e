"""A regular expression's pattern is text like any other: an unpaired surrogate in it is a 400, not a 500.

``bson.json_util`` turns ``{"$regex": "…"}`` (and ``{"$regularExpression": …}``)
into a ``bson.Regex`` before the allowlist sees it; the allowlist checked
such a pattern's length and shape but not that UTF-8 can hold it.
"""

from __future__ import annotations

import pytest

from tests.support import ADMIN, get, send

PATTERNS = {
    "$regex": '{"$regex": "a\\ud800"}',
    "$regex with $options": '{"$regex": "a\\ud800", "$options": "i"}',
    "$regularExpression": '{"$regularExpression": {"pattern": "a\\ud800", "options": ""}}',
}


@pytest.mark.parametrize("regex", PATTERNS.values(), ids=PATTERNS.keys())
def test_a_surrogate_in_a_find_filters_regex_is_400(client, collection, regex):
    response = get(client, f"/docdb/blog/{collection}", {"filter": '{"a": ' + regex + "}"}, ADMIN)
    assert response.status_code == 400, response.body


@pytest.mark.parametrize("regex", PATTERNS.values(), ids=PATTERNS.keys())
def test_a_surrogate_in_a_pipelines_regex_is_400(client, collection, regex):
    for pipeline in ('[{"$match": {"a": ' + regex + "}}]", '[{"$replaceWith": ' + regex + "}]"):
        raw = ('{"pipeline": ' + pipeline + "}").encode()
        response = send(client, "POST", f"/docdb/blog/{collection}/_aggregate", raw=raw, headers=ADMIN)
        assert response.status_code == 400, (pipeline, response.body)


@pytest.mark.parametrize("regex", PATTERNS.values(), ids=PATTERNS.keys())
def test_a_surrogate_in_a_stored_regex_is_400(client, stack, collection, regex):
    raw = ('{"_id": 1, "r": ' + regex + "}").encode()
    response = send(client, "POST", f"/docdb/blog/{collection}", raw=raw, headers=ADMIN)
    assert response.status_code == 400, response.body
    assert stack.mongo.blog[collection].count_documents({}) == 0
