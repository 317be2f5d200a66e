"""Injection and resource-exhaustion payloads through the routes, against SecantusDB.

Each refused request answers 4xx and leaves the collection exactly as it was.
SecantusDB has no JavaScript engine, so a $where would fail there anyway: the
tests assert our own 400, which names the operator before the driver sees it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from bson import ObjectId

from chalicelib import paging, web
from chalicelib.docdb.query import FindSpec, UpdateSpec, check_namespace
from chalicelib.errors import BadRequestError
from tests.support import ADMIN, basic, body, get, send

SEED = [{"_id": i, "name": f"user{i}", "rating": i, "tags": ["a", "b"][: i % 3], "s": "a" * 30} for i in range(6)]
JS_FUNCTION = {"$function": {"body": "function() { return true }", "args": [], "lang": "js"}}


def path(collection: str) -> str:
    return f"/docdb/blog/{collection}"


@pytest.fixture
def seeded(stack, collection) -> str:
    stack.mongo.blog[collection].insert_many([dict(d) for d in SEED])
    return collection


def contents(stack, collection: str) -> list[dict[str, Any]]:
    return list(stack.mongo.blog[collection].find({}, sort=[("_id", 1)]))


def assert_ours(response: Any, operator: str) -> None:
    """Our allowlist's 400, naming the operator: not the database's own refusal."""
    assert_refused(response, 400, f"uses {operator}, which is not accepted")


def assert_refused(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, response.body
    message = body(response).get("Message", "")
    for word in words:
        assert word in message, message


# --- operator allowlist, through every route that takes a query ----------------

REFUSED_FILTERS = [
    ({"$where": "sleep(10000) || true"}, "$where"),
    ({"$where": {"$code": "function() { return true }"}}, "$where"),
    ({"$expr": JS_FUNCTION}, "$function"),
    ({"$expr": {"$gt": [JS_FUNCTION, 0]}}, "$function"),
    ({"$or": [{"name": "user1"}, {"$where": "true"}]}, "$where"),
    ({"$and": [{"$nor": [{"tags": {"$elemMatch": {"$where": "true"}}}]}]}, "$where"),
    ({"name": {"$not": {"$where": "true"}}}, "$where"),
    ({"$expr": {"$accumulator": {"init": "function() {}"}}}, "$accumulator"),
    ({"rating": {"$gt": 0, "$foo": 1}}, "$foo"),
    ({"$jsonSchema": {}}, "$jsonSchema"),
    ({"$text": {"$search": "x"}}, "$text"),
    ({"$expr": {"$eq": ["$$USER_ROLES", []]}}, "$$USER_ROLES"),
    ({"name": {"$code": "function() {}"}}, "$code"),
    ({"name": {"$eq": {"$where": "true"}}}, "$where"),
]


@pytest.mark.parametrize(("flt", "operator"), REFUSED_FILTERS)
def test_refused_operator_in_a_get_filter_is_400_naming_it(client, stack, seeded, flt, operator):
    response = get(client, path(seeded), {"filter": json.dumps(flt)}, ADMIN)
    assert_ours(response, operator)


@pytest.mark.parametrize(("flt", "operator"), REFUSED_FILTERS[:6])
def test_refused_operator_in_a_delete_filter_deletes_nothing(client, stack, seeded, flt, operator):
    response = send(client, "DELETE", path(seeded), {"filter": flt}, ADMIN)
    assert_ours(response, operator)
    query_response = client.http.delete(f"{path(seeded)}?filter={json.dumps(flt)}&all=true", headers=ADMIN)
    assert query_response.status_code == 400
    assert contents(stack, seeded) == SEED


@pytest.mark.parametrize(
    ("payload", "operator"),
    [
        ({"filter": {"$where": "true"}, "update": {"$set": {"x": 1}}}, "$where"),
        ({"filter": {"_id": 1}, "update": {"$set": {"x": {"$function": JS_FUNCTION["$function"]}}}}, "$function"),
        ({"filter": {"_id": 1}, "update": {"$rename": {"a": "b"}, "$out": "stolen"}}, "$out"),
        ({"filter": {"_id": 1}, "update": {"$push": {"tags": {"$each": ["x"], "$where": 1}}}}, "$where"),
        ({"filter": {"_id": 1}, "update": {"$pull": {"tags": {"$where": "true"}}}}, "$where"),
        ({"filter": {"_id": 1}, "update": [{"$out": "stolen"}]}, "$out"),
        ({"filter": {"_id": 1}, "update": [{"$merge": {"into": "stolen"}}]}, "$merge"),
        ({"filter": {"_id": 1}, "update": [{"$lookup": {"from": "users"}}]}, "$lookup"),
        ({"filter": {"_id": 1}, "update": [{"$set": {"x": JS_FUNCTION}}]}, "$function"),
        ({"filter": {"_id": 1}, "update": [{"$set": {"x": {"$accumulator": {}}}}]}, "$accumulator"),
        ({"filter": {"_id": 1}, "update": [{"$replaceWith": "$$ROOT"}]}, "$replaceWith"),
        ({"filter": {"_id": 1}, "update": {"$set": {"a": 1}, "$where": "1"}}, "$where"),
    ],
)
def test_refused_operator_in_an_update_is_400_and_changes_nothing(client, stack, seeded, payload, operator):
    response = send(client, "PATCH", path(seeded) + "?all=true", payload, ADMIN)
    assert_ours(response, operator)
    assert contents(stack, seeded) == SEED
    assert "stolen" not in stack.mongo.blog.list_collection_names()


@pytest.mark.parametrize(
    ("projection", "operator"),
    [
        ({"name": JS_FUNCTION}, "$function"),
        ({"name": {"$meta": "textScore"}}, "$meta"),
        ({"tags": {"$where": 1}}, "$where"),
    ],
)
def test_refused_operator_in_a_projection_is_400(client, seeded, projection, operator):
    response = get(client, path(seeded), {"projection": json.dumps(projection)}, ADMIN)
    assert_ours(response, operator)


@pytest.mark.parametrize(
    "document",
    [{"$where": "true"}, {"a": {"$set": 1}}, {"a": [{"b": {"$function": {}}}]}, {"a": {"$code": "while(1){}"}},
     {"a\u0000b": 1}],
)  # fmt: skip
def test_documents_with_operators_or_javascript_are_refused(client, stack, seeded, document):
    assert send(client, "POST", path(seeded), [{"ok": 1}, document], ADMIN).status_code == 400
    assert contents(stack, seeded) == SEED


def test_refused_messages_say_what_to_use_instead(client, seeded):
    message = body(get(client, path(seeded), {"filter": '{"a": {"$near": [0, 0]}}'}, ADMIN))["Message"]
    assert "$near" in message and "$gt" in message and "$in" in message


# --- what the allowlist lets through still works end to end ----------------------


@pytest.mark.parametrize(
    ("flt", "ids"),
    [
        ({"$expr": {"$gt": ["$rating", 3]}}, [4, 5]),
        ({"$or": [{"rating": {"$lt": 1}}, {"name": {"$regex": "^USER5$", "$options": "i"}}]}, [0, 5]),
        ({"tags": {"$elemMatch": {"$eq": "b"}}}, [2, 5]),
        ({"name": {"$not": {"$regex": "[0-3]"}}}, [4, 5]),
        ({"rating": {"$in": [1, 2], "$exists": True}, "tags": {"$size": 1}}, [1]),
        ({"_id": {"$nin": [0, 1, 2]}, "$nor": [{"rating": 4}]}, [3, 5]),
    ],
)
def test_allowed_queries_run(client, seeded, flt, ids):
    docs = body(get(client, path(seeded), {"filter": json.dumps(flt), "projection": '{"_id": 1}'}, ADMIN))
    assert [d["_id"] for d in docs] == ids


def test_allowed_update_operators_and_pipeline_run(client, stack, seeded):
    ops = {"$inc": {"rating": 10}, "$push": {"tags": {"$each": ["z"], "$slice": -2}}, "$currentDate": {"at": True}}
    response = send(client, "PATCH", path(seeded), {"filter": {"_id": 1}, "update": ops}, ADMIN)
    assert body(response)["modified_count"] == 1
    pipeline = [{"$set": {"double": {"$multiply": ["$rating", 2]}}}, {"$unset": "s"}]
    response = send(client, "PATCH", path(seeded), {"filter": {"_id": 2}, "update": pipeline}, ADMIN)
    assert response.status_code == 200, response.body
    one, two = stack.mongo.blog[seeded].find({"_id": {"$in": [1, 2]}}, sort=[("_id", 1)])
    assert one["rating"] == 11 and one["tags"] == ["a", "z"] and "at" in one
    assert two["double"] == 4 and "s" not in two


def test_projection_operators_run(client, seeded):
    docs = body(get(client, path(seeded), {"projection": '{"tags": {"$slice": 1}, "_id": 1}', "filter": '{"_id": 2}'},
                    ADMIN))  # fmt: skip
    assert docs == [{"_id": 2, "tags": ["a"]}]


# --- regular expressions ----------------------------------------------------------


@pytest.mark.parametrize(
    "flt",
    [
        {"s": {"$regex": "^(a+)+$"}},
        {"s": {"$regex": "^(a|a?)+(\\w*)*$"}},
        {"s": {"$regularExpression": {"pattern": "(x+x+)+y", "options": ""}}},
        {"s": {"$in": [{"$regularExpression": {"pattern": "((a)*)*b", "options": ""}}]}},
        {"s": {"$not": {"$regex": "(?:a{2,}){2,}$"}}},
        {"s": {"$regex": "a" * 600}},
    ],
)
def test_catastrophic_or_long_regexes_are_400(client, stack, seeded, flt):
    response = get(client, path(seeded), {"filter": json.dumps(flt)}, ADMIN)
    assert response.status_code == 400
    response = send(client, "DELETE", path(seeded), {"filter": flt}, ADMIN)
    assert response.status_code == 400
    assert contents(stack, seeded) == SEED


@pytest.mark.parametrize("flt", [{"s": {"$options": "g"}}, {"s": {"$regex": 5}}, {"s": {"$regex": ["x"]}}])
def test_malformed_regex_operands_are_400(client, seeded, flt):
    assert get(client, path(seeded), {"filter": json.dumps(flt)}, ADMIN).status_code == 400


# --- malformed Extended JSON -------------------------------------------------------

BAD_EXTENDED_JSON = [
    '{"_id": {"$oid": "not-an-object-id"}}',
    '{"d": {"$date": {"$numberLong": "99999999999999999999"}}}',
    '{"d": {"$date": 99999999999999999999}}',
    '{"n": {"$numberDecimal": "twelve"}}',
]


@pytest.mark.parametrize("text", BAD_EXTENDED_JSON)
def test_malformed_extended_json_in_a_filter_is_400(client, seeded, text):
    assert_refused(get(client, path(seeded), {"filter": text}, ADMIN), 400, "Extended JSON")


@pytest.mark.parametrize("text", BAD_EXTENDED_JSON)
def test_malformed_extended_json_in_a_body_is_400(client, stack, seeded, text):
    assert send(client, "POST", path(seeded), raw=text.encode(), headers=ADMIN).status_code == 400
    assert contents(stack, seeded) == SEED


@pytest.mark.parametrize(
    ("method", "params", "payload"),
    [
        ("GET", {"filter": '{"name": "\\ud800"}'}, None),
        ("GET", {"sort": '{"\\udfff": 1}'}, None),
        ("GET", {"projection": '{"\\ud83d": 1}'}, None),
        ("POST", None, '{"name": "\\ud800x"}'),
        ("POST", None, '{"\\ud800": 1}'),
        ("PATCH", None, '{"filter": {"_id": 1}, "update": {"$set": {"name": "\\udc00"}}}'),
        ("DELETE", None, '{"filter": {"name": "\\ud800"}}'),
    ],
)
def test_unpaired_surrogates_are_400_and_change_nothing(client, stack, seeded, method, params, payload):
    if method == "GET":
        response = get(client, path(seeded), params, ADMIN)
    else:
        response = send(client, method, path(seeded), raw=payload.encode(), headers=ADMIN)
    assert_refused(response, 400, "Unicode")
    assert contents(stack, seeded) == SEED


@pytest.mark.parametrize(
    ("method", "params", "payload"),
    [
        ("GET", {"filter": '{"n": -19404459135275342171429811519488}'}, None),
        ("GET", {"filter": '{"n": {"$in": [1, 9223372036854775808]}}'}, None),
        ("POST", None, '{"n": 9223372036854775808}'),
        ("PATCH", None, '{"filter": {"_id": 1}, "update": {"$inc": {"rating": 99999999999999999999}}}'),
        ("DELETE", None, '{"filter": {"n": -9223372036854775809}}'),
    ],
)
def test_integers_beyond_64_bits_are_400_and_change_nothing(client, stack, seeded, method, params, payload):
    if method == "GET":
        response = get(client, path(seeded), params, ADMIN)
    else:
        response = send(client, method, path(seeded), raw=payload.encode(), headers=ADMIN)
    assert_refused(response, 400, "64-bit")
    assert contents(stack, seeded) == SEED


# --- request limits ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_body_over_the_limit_is_413_and_changes_nothing(client, stack, seeded, method):
    big = json.dumps({"filter": {"_id": 1}, "blob": "x" * web.MAX_BODY_BYTES}).encode()
    response = send(client, method, path(seeded), raw=big, headers=ADMIN)
    assert response.status_code == 413
    assert contents(stack, seeded) == SEED


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_non_json_content_type_is_415_and_changes_nothing(client, stack, seeded, method, content_type):
    payload = json.dumps({"filter": {"_id": 1}, "update": {"$set": {"x": 1}}, "y": 1}).encode()
    response = client.http.request(method, path(seeded), headers={**ADMIN, "Content-Type": content_type}, body=payload)
    assert response.status_code == 415
    assert contents(stack, seeded) == SEED


def test_more_than_1000_documents_is_400_and_stores_nothing(client, stack, seeded):
    response = send(client, "POST", path(seeded), [{"i": i} for i in range(1001)], ADMIN)
    assert_refused(response, 400, "1000")
    assert contents(stack, seeded) == SEED


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "1e3"}, {"limit": "١٠"}, {"limit": "99999999999999999999999"}, {"limit": "-1"}, {"limit": " 5"},
        {"limit": "0x10"}, {"limit": ""}, {"skip": "2147483648"}, {"skip": "1.5"}, {"skip": "٣"},
        {"skip": "9" * 400}, {"count": "yes"},
    ],
)  # fmt: skip
def test_out_of_range_numbers_are_400(client, seeded, params):
    assert get(client, path(seeded), params, ADMIN).status_code == 400


@pytest.mark.parametrize("url", ["/link", "/movies"])
@pytest.mark.parametrize("limit", ["1e3", "1001", "-5", "99999999999999999999"])
def test_out_of_range_limits_on_the_tables_are_400(client, stack, url, limit):
    assert get(client, url, {"limit": limit}).status_code == 400


@pytest.mark.parametrize(
    "url",
    ["/docdb/" + "é" * 32 + "/c", "/docdb/db/" + "é" * 61, "/docdb/a b/c", "/docdb/a:b/c", "/docdb/db/system.js"],
)
def test_malformed_or_long_names_are_4xx(client, url):
    response = get(client, url, headers=ADMIN)
    assert response.status_code in (400, 403), response.body


@pytest.mark.parametrize(("database", "collection"), [("a\0b", "c"), ("db", "c\0"), ("a/b", "c"), ("", "c")])
def test_names_api_gateway_would_decode_are_400(database, collection):
    # API Gateway percent-decodes path parameters (%00, %2F); the test client does not.
    with pytest.raises(BadRequestError):
        check_namespace(database, collection)


# --- forged cursors ---------------------------------------------------------------------


def _cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        _cursor({"k": "docdb", "o": -1, "q": "x"}),
        _cursor({"k": "docdb", "o": 10**30, "q": "x"}),
        _cursor({"k": "docdb", "o": "1", "q": "x"}),
        _cursor({"k": "link", "o": 1}),
        _cursor(["k", "docdb"]),
        _cursor({"k": "docdb", "o": 1, "q": {"$where": "true"}}),
        "A" * (paging.MAX_CURSOR_CHARS + 1),
        "%%%",
        "ü",
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
def test_forged_cursors_are_400(client, seeded, token):
    assert_refused(get(client, path(seeded), {"next": token}, ADMIN), 400, "next")


@pytest.mark.parametrize("token", [_cursor({"k": "docdb", "o": 1}), _cursor({"k": "link", "LastEvaluatedKey": 5}), "x"])
@pytest.mark.parametrize("url", ["/link", "/movies"])
def test_forged_table_cursors_are_400(client, stack, url, token):
    assert get(client, url, {"next": token}).status_code == 400


# --- malformed Basic credentials -------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        # scrypt's HMAC zero-pads its key, so a trailing NUL would verify.
        "Basic " + base64.b64encode(b"apiuser:apipassword\x00").decode(),
        "Basic " + base64.b64encode(b"apiuser:apipassword\n").decode(),
        "Basic " + base64.b64encode(b"apiuser:apipassword").decode() + "=====",
        "Basic " + base64.b64encode(b"apiuser:apipassword").decode()[:-2],
        "Basic " + base64.b64encode(b"apiuser\x00:apipassword").decode(),
        "Basic " + base64.b64encode(b"' OR '1'='1:x").decode(),
        "Basic " + base64.b64encode(b'{"$gt": ""}:{"$gt": ""}').decode(),
        "Basic  " + base64.b64encode(b"apiuser:").decode(),
        "Digest username=apiuser",
        "Basic " + "=" * 50,
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_malformed_basic_headers_are_401_and_change_nothing(client, stack, seeded, header, method):
    payload = {"filter": {"_id": 1}} if method == "DELETE" else {"x": 1}
    response = send(client, method, path(seeded), payload if method != "GET" else None, {"Authorization": header})
    assert response.status_code == 401
    assert contents(stack, seeded) == SEED


def test_valid_credentials_of_a_reader_cannot_write(client, stack, seeded):
    reader = basic("blogreader", "blogreaderpass")
    response = send(client, "DELETE", path(seeded), {"filter": {"_id": 1}}, reader)
    assert response.status_code == 403
    assert contents(stack, seeded) == SEED


# --- every command carries maxTimeMS ---------------------------------------------------------


def _sent(commands: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in commands if name in c]


def test_finds_and_counts_carry_max_time_ms(watched_service, collection):
    service, commands = watched_service
    spec = FindSpec(filter={"n": {"$gte": 0}}, projection=None, sort=[], limit=5, skip=0, count=True)
    service.find("blog", collection, spec)
    sent = _sent(commands, "find") + _sent(commands, "aggregate")
    assert len(sent) == 2 and all(c.get("maxTimeMS", 0) > 0 for c in sent), sent


def test_writes_carry_max_time_ms(watched_service, collection):
    service, commands = watched_service
    service.insert("blog", collection, [{"_id": ObjectId(), "n": 1}, {"_id": ObjectId(), "n": 2}])
    service.update("blog", collection, UpdateSpec(filter={"n": 1}, update={"$set": {"m": 1}}, upsert=False))
    service.delete("blog", collection, {"n": 2})
    sent = _sent(commands, "insert") + _sent(commands, "update") + _sent(commands, "delete")
    assert len(sent) == 3 and all(c.get("maxTimeMS", 0) > 0 for c in sent), sent
