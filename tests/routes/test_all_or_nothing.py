"""A refused multi-document insert or update changes nothing (issue 11: it runs in one transaction)."""

from __future__ import annotations

from tests.support import ADMIN, body, send


def test_insert_refused_mid_batch_leaves_every_document_as_it_was(client, stack, collection):
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, [{"_id": "keep0"}, {"_id": "keep1"}], ADMIN).status_code == 201
    # The first document would match both keep* by pattern; the second collides with keep0.
    response = send(client, "POST", path, [{"_id": {"$regex": "^keep"}}, {"_id": "new"}, {"_id": "keep0"}], ADMIN)
    assert response.status_code in (400, 409), response.body
    assert sorted(map(str, stack.mongo.blog[collection].distinct("_id"))) == ["keep0", "keep1"]


def test_insert_refused_mid_batch_inserts_none_of_the_batch(client, stack, collection):
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"_id": "taken"}, ADMIN).status_code == 201
    response = send(client, "POST", path, [{"_id": "a"}, {"_id": "b"}, {"_id": "taken"}, {"_id": "c"}], ADMIN)
    assert response.status_code == 409, response.body
    assert "nothing was inserted" in body(response)["Message"]
    assert stack.mongo.blog[collection].distinct("_id") == ["taken"]


def test_patch_refused_mid_way_changes_no_document(client, stack, collection):
    path = f"/docdb/blog/{collection}"
    documents = [{"_id": 1, "n": 1}, {"_id": 2, "n": "two"}, {"_id": 3, "n": 3}]
    assert send(client, "POST", path, documents, ADMIN).status_code == 201
    response = send(client, "PATCH", f"{path}?all=true", {"filter": {}, "update": {"$inc": {"n": 1}}}, ADMIN)
    assert response.status_code == 400, response.body
    assert [d["n"] for d in stack.mongo.blog[collection].find(sort=[("_id", 1)])] == [1, "two", 3]
