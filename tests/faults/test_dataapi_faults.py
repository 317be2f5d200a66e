"""The Data API when things fail: lost or stopped writes, a stopped database, an unreadable users secret."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import app as app_module
from chalicelib.docdb.client import MAX_TIME_MS_EXPIRED
from tests.support import commands_fail, create_key
from tests.support import data_api_action as action
from tests.support import data_api_namespace as namespace

DB = "learn-data-api"


@pytest.fixture(scope="module")
def key(stack):
    return create_key(stack, "apiuser")


def error(response: Any) -> dict[str, Any]:
    value = json.loads(response.body)
    assert set(value) == {"error", "error_code"}, value
    return value


@pytest.mark.parametrize(
    ("name", "command", "fields"),
    [
        ("insertOne", "insert", {"document": {"n": 9}}),
        ("updateOne", "update", {"filter": {"n": 1}, "update": {"$inc": {"n": 1}}}),
        ("updateMany", "update", {"filter": {}, "update": {"$inc": {"n": 1}}}),
        ("replaceOne", "update", {"filter": {"n": 1}, "replacement": {"n": 5}}),
        ("deleteOne", "delete", {"filter": {"n": 1}}),
        ("deleteMany", "delete", {"filter": {}}),
    ],
)
def test_a_write_stopped_by_the_server_is_503_outcome_unknown(client, key, stack, collection, name, command, fields):
    stack.mongo[DB][collection].insert_many([{"n": 1}, {"n": 2}])
    with commands_fail(stack.mongo, [command], MAX_TIME_MS_EXPIRED):
        response = action(client, name, {**namespace(collection), **fields}, key)
    assert response.status_code == 503, response.body
    body = error(response)
    if name == "updateMany":
        # Multi-document updates run in one transaction: stopped before its commit, nothing changed.
        assert body["error_code"] == "ServiceUnavailable" and "nothing was changed" in body["error"]
        assert sorted(d["n"] for d in stack.mongo[DB][collection].find()) == [1, 2]
    else:
        assert body["error_code"] == "WriteOutcomeUnknown"
        assert "may or may not" in body["error"]
    assert int(response.headers["Retry-After"]) > 0


def test_database_stopped_is_503_in_the_error_shape_then_recovers(client, key, stack, collection):
    stack.mongo[DB][collection].insert_one({"n": 1})
    stack.secantus.stop()
    try:
        started = time.monotonic()
        response = action(client, "find", namespace(collection), key)
        assert time.monotonic() - started < 10
    finally:
        stack.secantus.start()
    assert response.status_code == 503
    assert error(response)["error_code"] == "ServiceUnavailable"
    assert response.headers.get("Retry-After")
    assert len(json.loads(action(client, "find", namespace(collection), key).body)["documents"]) == 1


def test_users_secret_unreadable_is_503_not_401(client, key, collection, fresh_app, use):
    settings = app_module.get_settings()
    use(settings=type(settings)(**{**settings.__dict__, "api_users_secret_id": "x/y"}))
    response = action(client, "find", namespace(collection), key)
    assert response.status_code == 503, response.body
    assert error(response)["error_code"] == "ServiceUnavailable"


def test_a_bug_is_a_500_in_the_error_shape_without_details(client, key, collection, monkeypatch):
    from chalicelib.dataapi import formats

    def broken(*_args: Any, **_kwargs: Any) -> bytes:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(formats, "documents_body", broken)
    response = action(client, "find", namespace(collection), key)
    assert response.status_code == 500
    body = error(response)
    assert body["error_code"] == "InternalServerError" and "secret internals" not in body["error"]


# --- the single-document actions touch one document -------------------------------------------


def test_update_one_replace_one_delete_one_touch_exactly_one(client, key, stack, collection):
    stored = stack.mongo[DB][collection]
    stored.insert_many([{"g": 1, "i": i} for i in range(3)])
    ns = namespace(collection)
    update = {**ns, "filter": {"g": 1}, "update": {"$set": {"u": 1}}}
    assert json.loads(action(client, "updateOne", update, key).body) == {"matchedCount": 1, "modifiedCount": 1}
    assert stored.count_documents({"u": 1}) == 1
    action(client, "replaceOne", {**ns, "filter": {"g": 1, "u": {"$exists": False}}, "replacement": {"r": 1}}, key)
    assert stored.count_documents({"r": 1}) == 1 and stored.count_documents({"g": 1}) == 2
    assert json.loads(action(client, "deleteOne", {**ns, "filter": {"g": 1}}, key).body) == {"deletedCount": 1}
    assert stored.count_documents({}) == 2
    assert json.loads(action(client, "updateMany", {**ns, "filter": {}, "update": {"$set": {"m": 1}}}, key).body) == {
        "matchedCount": 2, "modifiedCount": 2}  # fmt: skip


# --- aggregate, through the sandboxed aggregation -----------------------------------------------


def test_aggregate_answers_documents_in_either_format(client, key, stack, collection):
    stack.mongo[DB][collection].insert_many([{"s": "a"} for _ in range(2)] + [{"s": "b"}])
    pipeline = [{"$group": {"_id": "$s", "count": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
    body = {**namespace(collection), "pipeline": pipeline}
    assert json.loads(action(client, "aggregate", body, key).body) == {
        "documents": [{"_id": "a", "count": 2}, {"_id": "b", "count": 1}]}  # fmt: skip
    assert json.loads(action(client, "aggregate", body, key, accept="application/ejson").body) == {
        "documents": [{"_id": "a", "count": {"$numberInt": "2"}},
                      {"_id": "b", "count": {"$numberInt": "1"}}]}  # fmt: skip


def test_aggregate_with_more_than_fits_is_400(client, key, stack, collection):
    stack.mongo[DB][collection].insert_many([{"i": i} for i in range(1001)])
    response = action(client, "aggregate", {**namespace(collection), "pipeline": [{"$match": {}}]}, key)
    assert response.status_code == 400
    assert "$limit" in error(response)["error"]
