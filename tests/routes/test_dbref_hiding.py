"""A DBRef (``{"$ref": …, "$id": …}``) cannot carry what the allowlist refuses.

``bson.json_util`` turns ``{"$ref": "c", "$id": v, …}`` into a ``bson.DBRef``
before the allowlist sees the request, and keeps every other key as an extra
field of it.  The allowlist walked dicts and lists only, so whatever a DBRef
held went to the database (or to the cursor digest) unchecked: JavaScript
and ``$`` field names were stored, and integers beyond 64 bits, nesting past
the encoder's depth or an unpaired surrogate were 500s.  A DBRef's ``$id`` is
now checked as a plain value, its names as text, and extra fields refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import ADMIN, body, get, send

DEEP = "[" * 300 + "]" * 300
# Each hides in a DBRef something the allowlist refuses anywhere else.
HIDDEN = {
    "javascript in $id": '{"$ref": "x", "$id": {"$code": "while (true) {}"}}',
    "an extra $ field": '{"$ref": "x", "$id": 1, "$where": "sleep(100)"}',
    "an extra field": '{"$ref": "x", "$id": 1, "note": {"$function": {}}}',
    "an integer beyond 64 bits": '{"$ref": "x", "$id": 99999999999999999999999}',
    "nesting past any limit": '{"$ref": "x", "$id": ' + DEEP + "}",
    "an unpaired surrogate": '{"$ref": "\\ud800", "$id": 1}',
    "an operator in $id": '{"$ref": "x", "$id": {"$where": "1"}}',
}


def _contents(stack: Any, collection: str) -> list[dict[str, Any]]:
    return list(stack.mongo.blog[collection].find({}, sort=[("_id", 1)]))


@pytest.fixture
def seeded(stack: Any, collection: str) -> str:
    stack.mongo.blog[collection].insert_many([{"_id": i, "n": i} for i in range(3)])
    return collection


@pytest.mark.parametrize("dbref", HIDDEN.values(), ids=HIDDEN.keys())
def test_an_insert_cannot_hide_refused_values_in_a_dbref(client, stack, seeded, dbref):
    before = _contents(stack, seeded)
    raw = ('{"_id": "hidden", "ref": ' + dbref + "}").encode()
    response = send(client, "POST", f"/docdb/blog/{seeded}", raw=raw, headers=ADMIN)
    assert response.status_code == 400, response.body
    assert _contents(stack, seeded) == before


@pytest.mark.parametrize("dbref", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_find_filter_cannot_hide_refused_values_in_a_dbref(client, seeded, dbref):
    response = get(client, f"/docdb/blog/{seeded}", {"filter": '{"ref": ' + dbref + "}"}, ADMIN)
    assert response.status_code == 400, response.body


@pytest.mark.parametrize("dbref", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_pipeline_cannot_hide_refused_values_in_a_dbref(client, seeded, dbref):
    raw = ('{"pipeline": [{"$match": {"ref": ' + dbref + '}}, {"$project": {"r": {"$literal": ' + dbref + "}}}]}")
    response = send(client, "POST", f"/docdb/blog/{seeded}/_aggregate", raw=raw.encode(), headers=ADMIN)
    assert response.status_code == 400, response.body


def test_an_update_cannot_hide_refused_values_in_a_dbref(client, stack, seeded):
    before = _contents(stack, seeded)
    raw = '{"filter": {"_id": 1}, "update": {"$set": {"ref": ' + HIDDEN["javascript in $id"] + "}}}"
    response = send(client, "PATCH", f"/docdb/blog/{seeded}", raw=raw.encode(), headers=ADMIN)
    assert response.status_code == 400, response.body
    assert _contents(stack, seeded) == before


def test_a_plain_dbref_still_goes_in_and_comes_back(client, seeded):
    document = {"_id": "plain", "ref": {"$ref": "authors", "$id": {"$oid": "5f0000000000000000000001"}, "$db": "blog"}}
    created = send(client, "POST", f"/docdb/blog/{seeded}", document, ADMIN)
    assert created.status_code == 201, created.body
    found = get(client, f"/docdb/blog/{seeded}", {"filter": '{"ref": {"$ref": "authors", '
                                                  '"$id": {"$oid": "5f0000000000000000000001"}, "$db": "blog"}}'},
                ADMIN)  # fmt: skip
    assert found.status_code == 200, found.body
    assert body(found) == [document]
