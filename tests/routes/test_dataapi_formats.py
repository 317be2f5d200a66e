"""The Data API's formats: every BSON type of data-formats.txt in canonical, relaxed and plain JSON.

Each type goes in once as canonical EJSON and once as relaxed EJSON, is
checked in the database as the BSON type it names, and comes back as the
table's canonical EJSON (Accept: application/ejson) and plain JSON
(Accept: application/json).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.dataapi import formats
from tests.support import EJSON, content_type, create_key
from tests.support import data_api_action as action
from tests.support import data_api_namespace as namespace

JSON = "application/json"

DB = "learn-data-api"

# name: (canonical, relaxed, plain JSON, the $type alias the database reports)
TYPES: dict[str, tuple[Any, Any, Any, str]] = {
    "Array": ([{"$numberInt": "1"}, "a"], [1, "a"], [1, "a"], "array"),
    "Binary": (
        {"$binary": {"base64": "e67803a39588be8a95731a21e27d7391", "subType": "05"}},
        {"$binary": {"base64": "e67803a39588be8a95731a21e27d7391", "subType": "05"}},
        {"Subtype": 5, "Data": "e67803a39588be8a95731a21e27d7391"},
        "binData",
    ),
    "Binary (generic)": (
        {"$binary": {"base64": "AAEC", "subType": "00"}},
        {"$binary": {"base64": "AAEC", "subType": "00"}},
        {"Subtype": 0, "Data": "AAEC"},
        "binData",
    ),
    "Date": (
        {"$date": {"$numberLong": "1641954803067"}},
        {"$date": "2022-01-12T02:33:23.067Z"},
        "2022-01-12T02:33:23.067Z",
        "date",
    ),
    "Decimal128": ({"$numberDecimal": "9823.1297"}, {"$numberDecimal": "9823.1297"}, "9823.1297", "decimal"),
    "Document": ({"a": {"$numberInt": "1"}}, {"a": 1}, {"a": 1}, "object"),
    "Double": ({"$numberDouble": "10.5"}, 10.5, 10.5, "double"),
    "Int32": ({"$numberInt": "10"}, 10, 10, "int"),
    "Int64": ({"$numberLong": "50"}, {"$numberLong": "50"}, 50, "long"),
    "MaxKey": ({"$maxKey": 1}, {"$maxKey": 1}, {}, "maxKey"),
    "MinKey": ({"$minKey": 1}, {"$minKey": 1}, {}, "minKey"),
    "ObjectId": (
        {"$oid": "5d505646cf6d4fe581014ab2"},
        {"$oid": "5d505646cf6d4fe581014ab2"},
        "5d505646cf6d4fe581014ab2",
        "objectId",
    ),
    "Regular Expression": (
        {"$regularExpression": {"pattern": "^H", "options": "i"}},
        {"$regularExpression": {"pattern": "^H", "options": "i"}},
        {"Pattern": "^H", "Options": "i"},
        "regex",
    ),
    "Timestamp": (
        {"$timestamp": {"t": 1565545664, "i": 1}},
        {"$timestamp": {"t": 1565545664, "i": 1}},
        {"T": 1565545664, "I": 1},
        "timestamp",
    ),
}


@pytest.fixture(scope="module")
def key(stack):
    return create_key(stack, "apiuser")


@pytest.mark.parametrize("name", list(TYPES))
@pytest.mark.parametrize("variant", ["canonical", "relaxed"])
@pytest.mark.parametrize("request_type", [EJSON, JSON])
def test_every_bson_type_round_trips(client, key, collection, stack, name, variant, request_type):
    canonical, relaxed, plain, alias = TYPES[name]
    ns = namespace(collection)
    sent = canonical if variant == "canonical" else relaxed
    inserted = action(client, "insertOne", {**ns, "document": {"_id": "doc", "v": sent}}, key,
                      content_type=request_type)  # fmt: skip
    assert inserted.status_code == 200, inserted.body
    assert stack.mongo[DB][collection].count_documents({"_id": "doc", "v": {"$type": alias}}) == 1
    if alias == "array":  # $type matches array elements too: make sure the element is an int32
        assert stack.mongo[DB][collection].count_documents({"v.0": {"$type": "int"}}) == 1

    as_ejson = action(client, "findOne", {**ns, "filter": {"_id": "doc"}}, key, accept=EJSON)
    assert content_type(as_ejson) == EJSON
    assert json.loads(as_ejson.body) == {"document": {"_id": "doc", "v": canonical}}

    as_json = action(client, "findOne", {**ns, "filter": {"_id": "doc"}}, key, accept=JSON)
    assert content_type(as_json) == JSON
    assert json.loads(as_json.body) == {"document": {"_id": "doc", "v": plain}}

    # find writes documents through its own page encoder: the same answers
    found = action(client, "find", {**ns}, key, accept=EJSON)
    assert json.loads(found.body) == {"documents": [{"_id": "doc", "v": canonical}]}
    found = action(client, "find", {**ns}, key, accept=JSON)
    assert json.loads(found.body) == {"documents": [{"_id": "doc", "v": plain}]}

    # what EJSON gave back can be sent back as a filter and matches the document
    again = action(client, "find", {**ns, "filter": {"v": canonical}}, key, accept=JSON)
    if alias not in ("regex", "array"):  # a regex filter is a pattern match; an array filter matches whole arrays
        assert len(json.loads(again.body)["documents"]) == 1, (name, again.body)


@pytest.mark.parametrize(
    ("accept", "default", "chosen"),
    [
        (None, JSON, JSON),
        (None, EJSON, EJSON),
        ("application/ejson", JSON, EJSON),
        ("application/json", EJSON, JSON),
        ("*/*", EJSON, EJSON),
        ("text/html", JSON, JSON),
        ("application/json;q=0.5, application/ejson", JSON, EJSON),
        ("application/ejson;q=0, application/json;q=0.1", EJSON, JSON),
        ("application/ejson;q=bogus", JSON, JSON),
        ("APPLICATION/EJSON", JSON, EJSON),
    ],
)
def test_accept_picks_the_format(accept, default, chosen):
    assert formats.response_type(accept, default) == chosen


def test_stage_setting_picks_the_default(client, stack, collection, monkeypatch, fresh_app):
    monkeypatch.setenv("DATA_API_RETURN_TYPE", "EJSON")
    key = create_key(stack, "apiuser")
    stack.mongo[DB][collection].insert_one({"_id": "x", "n": 1})
    response = action(client, "findOne", {**namespace(collection)}, key, accept=None)
    assert content_type(response) == EJSON
    assert json.loads(response.body) == {"document": {"_id": "x", "n": {"$numberInt": "1"}}}
    response = action(client, "findOne", {**namespace(collection)}, key, accept=JSON)
    assert json.loads(response.body) == {"document": {"_id": "x", "n": 1}}


def test_unset_stage_setting_means_json(client, stack, collection, fresh_app):
    key = create_key(stack, "apiuser")
    stack.mongo[DB][collection].insert_one({"_id": "x", "n": 1})
    response = action(client, "findOne", {**namespace(collection)}, key, accept=None)
    assert content_type(response) == JSON
    assert json.loads(response.body) == {"document": {"_id": "x", "n": 1}}


def test_a_bad_stage_setting_is_503_in_the_error_shape(client, stack, collection, monkeypatch, fresh_app):
    monkeypatch.setenv("DATA_API_RETURN_TYPE", "XML")
    key = create_key(stack, "apiuser")
    response = action(client, "findOne", {**namespace(collection)}, key)
    assert response.status_code == 503
    assert json.loads(response.body)["error_code"] == "ServiceUnavailable"
    assert response.headers.get("Retry-After")


def test_dates_outside_the_datetime_range_still_render():
    # (The local server refuses to store them, so the renderer is checked on its own.)
    from bson import DatetimeMS

    far = {"d": DatetimeMS(253402300800000 + 1000)}  # the first second of year 10000
    assert json.loads(formats.dumps(far, JSON)) == {"d": 253402300801000}
    assert json.loads(formats.dumps(far, EJSON)) == {"d": {"$date": {"$numberLong": "253402300801000"}}}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"dataSource": "x", "database": "d", "collection": "c", "filter": {"a": {"$numberInt": "x"}}}',
        b'{"dataSource": "x", "database": "d", "collection": "c", "filter": {"a": {"$date": "not a date"}}}',
        b'{"dataSource": "x", "database": "d", "collection": "c", "filter": {"a": {"$oid": "123"}}}',
        b'{"dataSource": "x", "database": "d", "collection": "c", "filter": {"a": {"$numberLong": "9223372036854775808"}}}',  # noqa: E501
        b'{"dataSource": "x", "database": "d", "collection": "c", "filter": {"a": 18446744073709551616}}',
    ],
)
def test_malformed_extended_json_is_400(client, key, raw):
    response = action(client, "find", None, key, raw=raw)
    assert response.status_code == 400, response.body
    assert json.loads(response.body)["error_code"] == "InvalidParameter"


def test_plain_json_for_what_the_table_leaves_out():
    from bson import Code, DBRef, Int64, ObjectId

    value = {"b": True, "n": None, "nan": float("nan"), "big": Int64(2**62), "code": Code("x"),
             "ref": DBRef("c", ObjectId("5d505646cf6d4fe581014ab2"))}  # fmt: skip
    assert json.loads(formats.dumps(value, JSON)) == {
        "b": True, "n": None, "nan": None, "big": 2**62, "code": {"$code": "x"},
        "ref": {"$ref": "c", "$id": {"$oid": "5d505646cf6d4fe581014ab2"}},
    }  # fmt: skip
    assert json.loads(formats.dumps(value, EJSON))["nan"] == {"$numberDouble": "NaN"}
