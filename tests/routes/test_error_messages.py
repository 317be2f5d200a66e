"""Error messages speak this API's language: no database internals, no driver advice (issue 11)."""

from __future__ import annotations

import pytest

from tests.support import ADMIN, body, send

INTERNALS = ("Plan executor", "caused by", "E11000", "index:", "dup key", "pymongo", "driver", "errmsg", "::")


def _clean(message: str) -> None:
    assert not any(word in message for word in INTERNALS), message


def test_a_refused_update_names_the_problem_not_the_database_internals(client, stack, collection):
    url = f"/docdb/blog/{collection}"
    assert send(client, "POST", url, [{"n": 1}, {"n": "one"}], ADMIN).status_code == 201
    response = send(client, "PATCH", url, {"filter": {"n": "one"}, "update": {"$inc": {"n": 1}}}, ADMIN)
    assert response.status_code == 400, response.body
    message = body(response)["Message"]
    _clean(message)
    assert "wrong type" in message


def test_a_duplicate_id_is_a_409_without_the_index_internals(client, stack, collection):
    url = f"/docdb/blog/{collection}"
    assert send(client, "POST", url, {"_id": "same"}, ADMIN).status_code == 201
    response = send(client, "POST", url, {"_id": "same"}, ADMIN)
    assert response.status_code == 409, response.body
    _clean(body(response)["Message"])


def test_a_duplicate_in_a_batch_is_a_409_without_the_index_internals(client, stack, collection):
    url = f"/docdb/blog/{collection}"
    response = send(client, "POST", url, [{"_id": "a"}, {"_id": "a"}], ADMIN)
    assert response.status_code == 409, response.body
    message = body(response)["Message"]
    _clean(message)
    assert "document 1" in message and "nothing was inserted" in message


@pytest.mark.parametrize(
    "update", [{"$set": {"n.x": 1}}, {"$set": {"_id": 5}}],
)
def test_other_refusals_carry_no_internals(client, stack, collection, update):
    url = f"/docdb/blog/{collection}"
    assert send(client, "POST", url, {"n": 1}, ADMIN).status_code == 201
    response = send(client, "PATCH", url, {"filter": {"n": 1}, "update": update}, ADMIN)
    assert response.status_code == 400, response.body
    _clean(body(response)["Message"])
