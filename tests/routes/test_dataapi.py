"""The Data API actions against the real stack, with requests shaped like the docs' curl snippets.

Each snippet of mongodb/docs-app-services source/data-api/snippets/ sends
``apiKey``, ``Content-Type: application/ejson`` and ``Accept: application/json``
to ``…/app/<id>/endpoint/data/v1/action/<name>`` with the bodies reproduced here
(database ``learn-data-api``; the collection is the test's own).  Every response
is checked against the shapes below, written from bundled.yaml's schemas.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId
from jsonschema import Draft202012Validator
from openapi_schema_validator import OAS30Validator

from chalicelib.dataapi import actions, openapi
from chalicelib.paging import MAX_PAGE_BYTES
from tests.support import ADMIN, EJSON, basic, content_type, keys_for_every_user
from tests.support import data_api_action as action
from tests.support import data_api_namespace as namespace

JSON = "application/json"

DB = "learn-data-api"

# --- the response shapes of bundled.yaml, per action and format --------------------------


def _obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


def _shapes(number: str, ident: str) -> dict[str, dict[str, Any]]:
    documents = _obj(["documents"], {"documents": {"type": "array", "items": {"type": "object"}}})
    counts = _obj(
        ["matchedCount", "modifiedCount"],
        {"matchedCount": {"type": number}, "modifiedCount": {"type": number}, "upsertedId": {"type": ident}},
    )
    return {
        "findOne": _obj(["document"], {"document": {"type": ["object", "null"]}}),
        "find": documents,
        "aggregate": documents,
        "insertOne": _obj(["insertedId"], {"insertedId": {"type": ident}}),
        "insertMany": _obj(["insertedIds"], {"insertedIds": {"type": "array", "items": {"type": ident}}}),
        "updateOne": counts,
        "updateMany": counts,
        "replaceOne": counts,
        "deleteOne": _obj(["deletedCount"], {"deletedCount": {"type": number}}),
        "deleteMany": _obj(["deletedCount"], {"deletedCount": {"type": number}}),
    }


SHAPES = {JSON: _shapes("integer", "string"), EJSON: _shapes("object", "object")}
ERROR_SHAPE = _obj(["error", "error_code"], {"error": {"type": "string"}, "error_code": {"type": "string"},
                                             "link": {"type": "string"}})  # fmt: skip


def ok(response: Any, name: str, media: str = JSON) -> Any:
    assert response.status_code == 200, response.body
    assert content_type(response) == media
    value = json.loads(response.body)
    Draft202012Validator(SHAPES[media][name]).validate(value)
    OAS30Validator(openapi.RESULT).validate(value)  # and what /openapi.json promises
    return value


def failed(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert content_type(response) == JSON
    value = json.loads(response.body)
    Draft202012Validator(ERROR_SHAPE).validate(value)
    OAS30Validator(openapi.ERROR).validate(value)
    if code is not None:
        assert value["error_code"] == code, value
    return value


@pytest.fixture(scope="module")
def keys(stack):
    return keys_for_every_user(stack)


@pytest.fixture
def admin(keys):
    return keys["apiuser"]


# --- the snippets, in order ---------------------------------------------------------------


def test_every_snippet_in_turn(client, admin, collection, stack):
    ns = namespace(collection)
    stored = stack.mongo[DB][collection]

    # hello-world.sh and insertOne.sh
    hello = ok(action(client, "insertOne", {**ns, "document": {"text": "Hello, world!"}}, admin), "insertOne")
    assert stored.find_one({"_id": ObjectId(hello["insertedId"])})["text"] == "Hello, world!"
    one = ok(action(client, "insertOne", {**ns, "document": {"status": "open", "text": "Do the dishes"}}, admin),
             "insertOne")  # fmt: skip

    # insertMany.sh
    many = ok(action(client, "insertMany", {**ns, "documents": [
        {"status": "open", "text": "Mop the floor"}, {"status": "open", "text": "Clean the windows"}]}, admin),
        "insertMany")  # fmt: skip
    assert len(many["insertedIds"]) == 2
    assert [d["text"] for d in stored.find({"_id": {"$in": [ObjectId(i) for i in many["insertedIds"]]}})] == [
        "Mop the floor", "Clean the windows"]  # fmt: skip

    # findOne.sh
    found = ok(action(client, "findOne", {**ns, "filter": {"text": "Do the dishes"}}, admin), "findOne")
    assert found["document"] == {"_id": one["insertedId"], "status": "open", "text": "Do the dishes"}

    # updateOne.sh: an $oid filter and an EJSON date in the update
    completed = {"$date": {"$numberLong": "1680105272788"}}
    update_one = {**ns, "filter": {"_id": {"$oid": one["insertedId"]}},
                  "update": {"$set": {"status": "complete", "completedAt": completed}}}
    assert ok(action(client, "updateOne", update_one, admin), "updateOne") == {"matchedCount": 1, "modifiedCount": 1}
    assert stored.find_one({"text": "Do the dishes"})["completedAt"].isoformat() == "2023-03-29T15:54:32.788000"

    # updateMany.sh
    completed = {"$date": {"$numberLong": "1680105287069"}}
    update_many = {**ns, "filter": {"status": "open"},
                   "update": {"$set": {"status": "complete", "completedAt": completed}}}
    assert ok(action(client, "updateMany", update_many, admin), "updateMany") == {"matchedCount": 2, "modifiedCount": 2}

    # find.sh
    find = {**ns, "filter": {"status": "complete"}, "sort": {"completedAt": 1}, "limit": 10}
    documents = ok(action(client, "find", find, admin), "find")["documents"]
    assert documents[0]["text"] == "Do the dishes"
    assert len(documents) == 3
    assert documents[0]["completedAt"] == "2023-03-29T15:54:32.788Z"

    # replaceOne.sh
    replace = {**ns, "filter": {"text": "Clean the windows"},
               "replacement": {"status": "open", "text": "Re-clean the windows"}}
    assert ok(action(client, "replaceOne", replace, admin), "replaceOne") == {"matchedCount": 1, "modifiedCount": 1}
    assert stored.find_one({"_id": ObjectId(many["insertedIds"][1])}) == {
        "_id": ObjectId(many["insertedIds"][1]), "status": "open", "text": "Re-clean the windows"}  # fmt: skip

    # aggregate.sh
    pipeline = [{"$match": {"status": "complete"}},
                {"$group": {"_id": "$status", "count": {"$sum": 1}, "tasks": {"$push": "$text"}}},
                {"$sort": {"count": -1}}]  # fmt: skip
    response = action(client, "aggregate", {**ns, "pipeline": pipeline}, admin)
    [group] = ok(response, "aggregate")["documents"]
    assert group["_id"] == "complete" and group["count"] == 2

    # deleteOne.sh
    delete_one = {**ns, "filter": {"_id": {"$oid": one["insertedId"]}}}
    assert ok(action(client, "deleteOne", delete_one, admin), "deleteOne") == {"deletedCount": 1}
    assert stored.count_documents({"_id": ObjectId(one["insertedId"])}) == 0

    # deleteMany.sh
    assert ok(action(client, "deleteMany", {**ns, "filter": {"status": "complete"}}, admin), "deleteMany") == {
        "deletedCount": 1}  # fmt: skip
    assert sorted(d["text"] for d in stored.find()) == ["Hello, world!", "Re-clean the windows"]


def test_the_same_run_in_canonical_ejson(client, admin, collection):
    ns = namespace(collection)

    def run(name: str, body: dict[str, Any]) -> Any:
        return ok(action(client, name, {**ns, **body}, admin, accept=EJSON), name, EJSON)

    inserted = run("insertOne", {"document": {"n": 1}})["insertedId"]
    assert set(inserted) == {"$oid"}
    assert [set(i) for i in run("insertMany", {"documents": [{"n": 2}, {"n": 3}]})["insertedIds"]] == [{"$oid"}] * 2
    assert run("findOne", {"filter": {"_id": inserted}}) == {"document": {"_id": inserted, "n": {"$numberInt": "1"}}}
    assert run("findOne", {"filter": {"n": 99}}) == {"document": None}
    assert len(run("find", {"filter": {}})["documents"]) == 3
    assert run("updateOne", {"filter": {"n": 1}, "update": {"$inc": {"n": 10}}}) == {
        "matchedCount": {"$numberInt": "1"}, "modifiedCount": {"$numberInt": "1"}}  # fmt: skip
    upserted = run("updateMany", {"filter": {"n": 50}, "update": {"$set": {"m": 1}}, "upsert": True})
    assert upserted["matchedCount"] == {"$numberInt": "0"} and set(upserted["upsertedId"]) == {"$oid"}
    replaced = run("replaceOne", {"filter": {"n": 60}, "replacement": {"n": 61}, "upsert": True})
    assert set(replaced["upsertedId"]) == {"$oid"}
    assert run("deleteOne", {"filter": {"n": 61}}) == {"deletedCount": {"$numberInt": "1"}}
    assert run("deleteMany", {"filter": {}}) == {"deletedCount": {"$numberInt": "4"}}


def test_upserts_answer_upserted_id_and_plain_updates_do_not(client, admin, collection):
    ns = namespace(collection)
    first = ok(action(client, "updateOne", {**ns, "filter": {"k": 1}, "update": {"$set": {"v": 1}}, "upsert": True},
                      admin), "updateOne")  # fmt: skip
    assert first["matchedCount"] == 0 and first["modifiedCount"] == 0 and ObjectId.is_valid(first["upsertedId"])
    again = ok(action(client, "updateOne", {**ns, "filter": {"k": 1}, "update": {"$set": {"v": 1}}, "upsert": True},
                      admin), "updateOne")  # fmt: skip
    assert again == {"matchedCount": 1, "modifiedCount": 0}


@pytest.mark.parametrize("prefix", ["", "/app/any-app-id/endpoint/data/v1"])
def test_served_at_the_root_and_under_the_atlas_path(client, admin, collection, prefix):
    response = action(client, "find", {**namespace(collection)}, admin, prefix=prefix)
    assert ok(response, "find") == {"documents": []}


def test_documented_json_examples_with_application_json(client, admin, collection):
    """generated-endpoints.txt sends EJSON wrappers with Content-Type: application/json too."""
    ns = namespace(collection)
    body = {**ns, "document": {"_id": {"$oid": "629971c0d71aad65bd59c595"}, "greeting": "Hello, EJSON!",
                               "date": {"$date": {"$numberLong": "1654589430998"}}}}  # fmt: skip
    inserted = ok(action(client, "insertOne", body, admin, content_type=JSON), "insertOne")
    assert inserted == {"insertedId": "629971c0d71aad65bd59c595"}
    found = ok(action(client, "findOne", {**ns, "projection": {"greeting": 1, "date": 1}}, admin,
                      content_type=JSON), "findOne")  # fmt: skip
    assert found == {"document": {"_id": "629971c0d71aad65bd59c595", "greeting": "Hello, EJSON!",
                                  "date": "2022-06-07T08:10:30.998Z"}}  # fmt: skip
    found = ok(action(client, "findOne", {**ns}, admin, content_type=JSON, accept=EJSON), "findOne", EJSON)
    assert found["document"]["date"] == {"$date": {"$numberLong": "1654589430998"}}


# --- find: limit, skip, sort and the response budget ---------------------------------------


def test_find_limit_skip_sort(client, admin, collection, stack):
    stack.mongo[DB][collection].insert_many([{"i": i} for i in range(30)])
    ns = namespace(collection)
    body = {**ns, "sort": {"i": -1}, "skip": 5, "limit": 3, "projection": {"_id": 0}}
    assert ok(action(client, "find", body, admin), "find") == {"documents": [{"i": 24}, {"i": 23}, {"i": 22}]}
    assert len(ok(action(client, "find", ns, admin), "find")["documents"]) == 30  # default limit 1000


def test_an_empty_projection_returns_every_field(client, admin, collection, stack):
    stack.mongo[DB][collection].insert_one({"_id": "p", "a": 1, "b": 2})
    ns = namespace(collection)
    expected = {"_id": "p", "a": 1, "b": 2}
    assert ok(action(client, "findOne", {**ns, "projection": {}}, admin), "findOne") == {"document": expected}
    assert ok(action(client, "find", {**ns, "projection": {}}, admin), "find") == {"documents": [expected]}


@pytest.mark.parametrize("limit", [0, -1, actions.MAX_FIND_LIMIT + 1, 1.5, "10", True])
def test_find_limit_out_of_range_is_400(client, admin, collection, limit):
    failed(action(client, "find", {**namespace(collection), "limit": limit}, admin), 400, "InvalidParameter")


def test_find_past_the_response_budget_is_400_and_says_what_to_do(client, admin, collection, stack):
    big = "x" * (1024 * 1024)
    stack.mongo[DB][collection].insert_many([{"i": i, "big": big} for i in range(6)])
    response = action(client, "find", {**namespace(collection), "sort": {"i": 1}}, admin)
    message = failed(response, 400, "InvalidParameter")["error"]
    assert str(MAX_PAGE_BYTES) in message and "lower limit" in message
    fits = ok(action(client, "find", {**namespace(collection), "sort": {"i": 1}, "limit": 4}, admin), "find")
    assert len(fits["documents"]) == 4
    assert ok(action(client, "find", {**namespace(collection), "projection": {"big": 0}}, admin), "find")


def test_find_one_larger_than_the_budget_is_400(client, admin, collection, stack):
    stack.mongo[DB][collection].insert_one({"_id": 1, "big": "\u00e9" * (2 * 1024 * 1024)})  # 4 MB, ~12 MB escaped
    message = failed(action(client, "findOne", {**namespace(collection)}, admin), 400)["error"]
    assert "project fewer fields" in message


# --- shapes the contract refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("find", {"database": DB, "collection": "c"}, "MissingParameter"),
        ("find", {"dataSource": "mongodb-atlas", "collection": "c"}, "MissingParameter"),
        ("find", {"dataSource": "", "database": DB, "collection": "c"}, "InvalidParameter"),
        ("find", {"dataSource": "x", "database": 5, "collection": "c"}, "InvalidParameter"),
        ("find", {"dataSource": "x", "database": DB, "collection": "c", "bogus": 1}, "InvalidParameter"),
        ("insertOne", {"dataSource": "x", "database": DB, "collection": "c"}, "MissingParameter"),
        ("insertOne", {"dataSource": "x", "database": DB, "collection": "c", "document": [1]}, "InvalidParameter"),
        ("insertMany", {"dataSource": "x", "database": DB, "collection": "c", "documents": {"a": 1}},
         "InvalidParameter"),
        ("insertMany", {"dataSource": "x", "database": DB, "collection": "c", "documents": []}, "InvalidParameter"),
        ("updateOne", {"dataSource": "x", "database": DB, "collection": "c", "filter": {}}, "MissingParameter"),
        ("updateOne", {"dataSource": "x", "database": DB, "collection": "c", "update": {"$set": {"a": 1}}},
         "MissingParameter"),
        ("updateOne", {"dataSource": "x", "database": DB, "collection": "c", "filter": {}, "update": {"a": 1}},
         "InvalidParameter"),
        ("updateMany", {"dataSource": "x", "database": DB, "collection": "c", "filter": {},
                        "update": {"$set": {"a": 1}}, "upsert": "yes"}, "InvalidParameter"),
        ("replaceOne", {"dataSource": "x", "database": DB, "collection": "c", "filter": {},
                        "replacement": {"$set": {"a": 1}}}, "InvalidParameter"),
        ("deleteOne", {"dataSource": "x", "database": DB, "collection": "c"}, "MissingParameter"),
        ("deleteMany", {"dataSource": "x", "database": DB, "collection": "c", "filter": None}, "InvalidParameter"),
        ("aggregate", {"dataSource": "x", "database": DB, "collection": "c"}, "MissingParameter"),
        ("aggregate", {"dataSource": "x", "database": DB, "collection": "c", "pipeline": {"$match": {}}},
         "InvalidParameter"),
        ("findOne", {"dataSource": "x", "database": DB, "collection": "c", "sort": {"a": 1}}, "InvalidParameter"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_400_in_the_error_shape(client, admin, name, body, code):
    failed(action(client, name, body, admin), 400, code)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b'"text"', b'{"a": {"$oid": "nope"}}'])
def test_unparseable_bodies_are_400(client, admin, raw):
    failed(action(client, "find", None, admin, raw=raw), 400, "InvalidParameter")


def test_unknown_action_is_404(client, admin, collection):
    failed(action(client, "findAll", namespace(collection), admin), 404, "NotFound")
    failed(action(client, "findAll", namespace(collection), None), 404, "NotFound")


def test_content_type_missing_is_400_and_foreign_is_415(client, admin, collection):
    failed(action(client, "find", namespace(collection), admin, content_type=None), 400, "MissingParameter")
    failed(action(client, "find", namespace(collection), admin, content_type="text/plain"), 415,
           "UnsupportedMediaType")  # fmt: skip
    ok(action(client, "find", namespace(collection), admin, content_type="application/json; charset=utf-8"), "find")


def test_body_over_the_limit_is_413(client, admin, collection):
    raw = json.dumps({**namespace(collection), "document": {"x": "y" * (5 * 1024 * 1024)}}).encode()
    failed(action(client, "insertOne", None, admin, raw=raw), 413, "PayloadTooLarge")


def test_duplicate_id_is_409_and_insert_many_writes_none(client, admin, collection, stack):
    ns = namespace(collection)
    ok(action(client, "insertOne", {**ns, "document": {"_id": "one"}}, admin), "insertOne")
    failed(action(client, "insertOne", {**ns, "document": {"_id": "one"}}, admin), 409, "DuplicateKey")
    failed(action(client, "insertMany", {**ns, "documents": [{"_id": "two"}, {"_id": "one"}]}, admin), 409,
           "DuplicateKey")  # fmt: skip
    assert stack.mongo[DB][collection].count_documents({}) == 1


def test_basic_auth_works_on_these_routes(client, collection):
    response = action(client, "find", namespace(collection), headers=ADMIN)
    assert ok(response, "find") == {"documents": []}
    failed(action(client, "find", namespace(collection), headers=basic("apiuser", "wrong-password")), 401,
           "InvalidSession")  # fmt: skip


# --- grants, reserved names and the operator allowlist, on every action -----------------------

_BODIES: dict[str, dict[str, Any]] = {
    "findOne": {"filter": {}},
    "find": {"filter": {}},
    "insertOne": {"document": {"a": 1}},
    "insertMany": {"documents": [{"a": 1}]},
    "updateOne": {"filter": {"a": 1}, "update": {"$set": {"b": 1}}},
    "updateMany": {"filter": {"a": 1}, "update": {"$set": {"b": 1}}},
    "replaceOne": {"filter": {"a": 1}, "replacement": {"b": 1}},
    "deleteOne": {"filter": {"a": 1}},
    "deleteMany": {"filter": {"a": 1}},
    "aggregate": {"pipeline": [{"$match": {}}]},
}
READS = {"findOne", "find", "aggregate"}


@pytest.mark.parametrize("name", list(actions.ACTIONS))
def test_grants_decide_every_action(client, keys, name, stack):
    # reader: demodb/democollection:r; blogreader: blog/*:r and shared/notes:rw
    body = {"dataSource": "x", "database": "demodb", "collection": "democollection", **_BODIES[name]}
    outside = {**body, "database": "blog2"}
    failed(action(client, name, outside, keys["reader"]), 403, "Forbidden")
    response = action(client, name, body, keys["reader"])
    if name in READS:
        assert response.status_code == 200, response.body
    else:
        failed(response, 403, "Forbidden")
    before = stack.mongo["blog"]["posts"].count_documents({})
    response = action(client, name, {**body, "database": "blog", "collection": "posts"}, keys["blogreader"])
    assert response.status_code == (200 if name in READS else 403), response.body
    assert stack.mongo["blog"]["posts"].count_documents({}) == before
    notes = action(client, name, {**body, "database": "shared", "collection": "notes"}, keys["blogreader"])
    assert notes.status_code == 200, notes.body


@pytest.mark.parametrize("name", list(actions.ACTIONS))
@pytest.mark.parametrize(("database", "collection"), [("admin", "x"), ("local", "x"), ("demodb", "system.users")])
def test_reserved_namespaces_are_403_on_every_action_even_for_admin(client, admin, name, database, collection):
    body = {"dataSource": "x", "database": database, "collection": collection, **_BODIES[name]}
    failed(action(client, name, body, admin), 403, "Forbidden")


@pytest.mark.parametrize("name", list(actions.ACTIONS))
def test_invalid_names_are_400_on_every_action(client, admin, name):
    body = {"dataSource": "x", "database": "bad.name", "collection": "c", **_BODIES[name]}
    failed(action(client, name, body, admin), 400, "InvalidParameter")


_REFUSED: dict[str, dict[str, Any]] = {
    "findOne": {"filter": {"$where": "sleep(100)"}},
    "find": {"filter": {"a": {"$function": {}}}},
    "insertOne": {"document": {"a": {"$code": "function () {}"}}},
    "insertMany": {"documents": [{"a": 1}, {"$set": 1}]},
    "updateOne": {"filter": {}, "update": {"$where": {}}},
    "updateMany": {"filter": {"a": {"$where": "1"}}, "update": {"$set": {"b": 1}}},
    "replaceOne": {"filter": {}, "replacement": {"a": {"$where": "1"}}},
    "deleteOne": {"filter": {"$where": "1"}},
    "deleteMany": {"filter": {"a": {"$regex": "(a+)+$"}}},
    "aggregate": {"pipeline": [{"$out": "elsewhere"}]},
}


@pytest.mark.parametrize("name", list(actions.ACTIONS))
def test_the_operator_allowlist_holds_on_every_action(client, admin, collection, name, stack):
    stack.mongo[DB][collection].insert_one({"a": 1})
    response = action(client, name, {**namespace(collection), **_REFUSED[name]}, admin)
    assert failed(response, 400, "InvalidParameter")["error"]
    assert list(stack.mongo[DB][collection].find({}, {"_id": 0})) == [{"a": 1}]


def test_explicit_empty_filter_deletes_everything(client, admin, collection, stack):
    stack.mongo[DB][collection].insert_many([{"a": i} for i in range(3)])
    assert ok(action(client, "deleteMany", {**namespace(collection), "filter": {}}, admin), "deleteMany") == {
        "deletedCount": 3}  # fmt: skip


def test_the_openapi_description_names_every_action_and_both_routes():
    paths = openapi.openapi_paths()
    assert set(paths) == {"/action/{action}", "/app/{app_id}/endpoint/data/v1/action/{action}"}
    for item in paths.values():
        [action_param] = [p for p in item["parameters"] if p["name"] == "action"]
        assert action_param["schema"]["enum"] == list(actions.ACTIONS)
        assert set(item["post"]["requestBody"]["content"]) == {JSON, EJSON}
        assert item["post"]["requestBody"]["content"][JSON]["schema"]["properties"]["limit"]["maximum"] == (
            actions.MAX_FIND_LIMIT)  # fmt: skip


def test_an_aggregate_joining_a_collection_outside_the_grants_is_403_naming_it(client, keys):
    # reader: demodb/democollection:r only; the join reads demodb/other.
    body = {"dataSource": "x", "database": "demodb", "collection": "democollection",
            "pipeline": [{"$unionWith": {"coll": "democollection", "pipeline": [{"$unionWith": "other"}]}}]}
    error = failed(action(client, "aggregate", body, keys["reader"]), 403, "Forbidden")
    assert "demodb/other" in error["error"]
