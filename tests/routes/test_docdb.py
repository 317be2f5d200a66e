"""The DocumentDB collection routes against SecantusDB with TLS and SCRAM."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from bson import Binary, Decimal128, ObjectId

from tests.support import ADMIN, body, get, next_url, send, walk


def path(collection: str, db: str = "blog") -> str:
    return f"/docdb/{db}/{collection}"


def insert(client, collection, docs, db="blog"):
    response = send(client, "POST", path(collection, db), docs, ADMIN)
    assert response.status_code == 201, response.body
    return body(response)


def find(client, collection, db="blog", **params):
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    response = get(client, path(collection, db), params, ADMIN)
    assert response.status_code == 200, response.body
    return body(response)


# --- insert -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_insert_one_returns_201_with_id(client, stack, collection, method):
    response = send(client, method, path(collection), {"name": "brian", "rating": 5}, ADMIN)
    assert response.status_code == 201
    stored = body(response)
    assert stored["name"] == "brian" and stored["rating"] == 5
    oid = ObjectId(stored["_id"]["$oid"])
    assert stack.mongo.blog[collection].find_one({"_id": oid})["name"] == "brian"


def test_insert_array_returns_every_document(client, stack, collection):
    stored = insert(client, collection, [{"n": i} for i in range(5)])
    assert [d["n"] for d in stored] == list(range(5))
    assert len({d["_id"]["$oid"] for d in stored}) == 5
    assert stack.mongo.blog[collection].count_documents({}) == 5


def test_insert_keeps_a_client_id(client, stack, collection):
    stored = insert(client, collection, {"_id": "brian", "rating": 5})
    assert stored["_id"] == "brian"


def test_duplicate_id_is_409(client, collection):
    insert(client, collection, {"_id": 1})
    response = send(client, "POST", path(collection), {"_id": 1, "again": True}, ADMIN)
    assert response.status_code == 409
    assert body(response)["Code"] == "ConflictError"


def test_array_with_a_duplicate_inserts_nothing(client, stack, collection):
    insert(client, collection, {"_id": 3})
    response = send(client, "POST", path(collection), [{"_id": 1}, {"_id": 2}, {"_id": 3}, {"_id": 4}], ADMIN)
    assert response.status_code == 409
    assert "nothing was inserted" in body(response)["Message"]
    assert sorted(d["_id"] for d in stack.mongo.blog[collection].find()) == [3]


@pytest.mark.parametrize(
    "payload",
    [[], [{"a": 1}] * 1001, "text", 5, [{"a": 1}, 2], {"$set": {"a": 1}}, {"a": {"$gt": 1}}, {"a\u0000b": 1}],
)
def test_invalid_insert_is_400_and_stores_nothing(client, stack, collection, payload):
    response = send(client, "POST", path(collection), payload, ADMIN)
    assert response.status_code == 400, response.body
    assert stack.mongo.blog[collection].count_documents({}) == 0


def test_insert_of_1000_documents_is_accepted(client, stack, collection):
    response = send(client, "POST", path(collection), [{"i": i} for i in range(1000)], ADMIN)
    assert response.status_code == 201
    assert stack.mongo.blog[collection].count_documents({}) == 1000


def test_malformed_json_body_is_400(client, collection):
    response = send(client, "POST", path(collection), raw=b'{"name": ', headers=ADMIN)
    assert response.status_code == 400
    assert body(response)["Code"] == "BadRequestError"


def test_non_json_content_type_is_415(client, collection):
    response = client.http.post(path(collection), headers={**ADMIN, "Content-Type": "text/csv"}, body=b"a,b")
    assert response.status_code == 415


# --- find -------------------------------------------------------------------


def test_get_returns_all_documents(client, collection):
    insert(client, collection, [{"name": "brian", "rating": 5}, {"name": "jason", "rating": 3}])
    docs = find(client, collection)
    assert [d["name"] for d in docs] == ["brian", "jason"]


def test_filter_and_projection_from_seed(client, collection):
    insert(client, collection, [{"name": "joe", "rating": 1}, {"name": "ann", "rating": 2}])
    assert find(client, collection, filter={"name": "joe"}, projection={"_id": 0, "name": 1}) == [{"name": "joe"}]


def test_filter_with_operators(client, collection):
    insert(client, collection, [{"n": i} for i in range(10)])
    docs = find(client, collection, filter={"n": {"$gte": 3, "$lt": 6}}, projection={"_id": 0})
    assert docs == [{"n": 3}, {"n": 4}, {"n": 5}]


@pytest.mark.parametrize("sort", [{"rating": -1, "name": 1}, [["rating", -1], ["name", 1]]], ids=["object", "pairs"])
def test_sort_forms(client, collection, sort):
    insert(client, collection, [{"name": n, "rating": r} for n, r in [("a", 1), ("b", 3), ("c", 3), ("d", 2)]])
    docs = find(client, collection, sort=sort, projection={"_id": 0, "name": 1})
    assert [d["name"] for d in docs] == ["b", "c", "d", "a"]


def test_limit_and_skip(client, collection):
    insert(client, collection, [{"n": i} for i in range(10)])
    docs = find(client, collection, sort={"n": 1}, limit="3", skip="4")
    assert [d["n"] for d in docs] == [4, 5, 6]


def test_count_sets_total_header(client, collection):
    insert(client, collection, [{"n": i} for i in range(7)])
    response = get(client, path(collection), {"count": "true", "limit": "2", "filter": '{"n": {"$lt": 5}}'}, ADMIN)
    assert response.headers["X-Total-Count"] == "5"
    assert len(body(response)) == 2


def test_no_count_header_without_count(client, collection):
    insert(client, collection, {"n": 1})
    assert "X-Total-Count" not in get(client, path(collection), headers=ADMIN).headers


def test_missing_collection_is_empty_array(client, collection):
    assert find(client, collection) == []


def test_paging_walks_every_document_once(client, collection):
    insert(client, collection, [{"n": i} for i in range(23)])
    docs, pages = walk(client, f"{path(collection)}?limit=5&sort=%7B%22n%22%3A-1%7D", ADMIN)
    assert pages == 5
    assert [d["n"] for d in docs] == list(range(22, -1, -1))


def test_paging_with_ties_in_the_sort_key_is_stable(client, collection):
    insert(client, collection, [{"g": i % 2, "n": i} for i in range(40)])
    docs, _ = walk(client, f"{path(collection)}?limit=7&sort=%7B%22g%22%3A1%7D", ADMIN)
    assert sorted(d["n"] for d in docs) == list(range(40))


def test_default_limit_is_100(client, collection):
    insert(client, collection, [{"n": i} for i in range(120)])
    response = get(client, path(collection), headers=ADMIN)
    assert len(body(response)) == 100
    assert next_url(response) is not None


def test_exact_last_page_has_no_next(client, collection):
    insert(client, collection, [{"n": i} for i in range(10)])
    assert next_url(get(client, path(collection), {"limit": "10"}, ADMIN)) is None


def test_cursor_of_another_query_is_400(client, collection):
    insert(client, collection, [{"n": i} for i in range(10)])
    url = next_url(get(client, path(collection), {"limit": "3"}, ADMIN))
    token = url.split("next=")[1]
    response = get(client, path(collection), {"limit": "3", "filter": '{"n": 1}', "next": token}, ADMIN)
    assert response.status_code == 400


def test_page_is_cut_short_before_five_megabytes(client, stack, collection):
    big = "x" * 900_000
    stack.mongo.blog[collection].insert_many([{"n": i, "blob": big} for i in range(8)])
    response = get(client, path(collection), {"limit": "100"}, ADMIN)
    assert response.status_code == 200
    assert len(response.body) <= 5 * 1024 * 1024
    assert 0 < len(body(response)) < 8
    assert next_url(response) is not None
    docs, _ = walk(client, f"{path(collection)}?limit=100", ADMIN)
    assert [d["n"] for d in docs] == list(range(8))


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "{not json"},
        {"filter": "[1, 2]"},
        {"projection": '"name"'},
        {"projection": '{"name": "yes"}'},
        {"sort": '{"n": 2}'},
        {"sort": '[["n"]]'},
        {"sort": '"n"'},
        {"sort": '{"$natural": 1}'},
        {"limit": "0"},
        {"limit": "1001"},
        {"skip": "-1"},
        {"skip": "x"},
        {"skip": "99999999999999999999"},
        {"count": "maybe"},
        {"next": "%%%"},
    ],
)
def test_bad_find_parameters_are_400(client, collection, params):
    response = get(client, path(collection), params, ADMIN)
    assert response.status_code == 400, response.body
    assert body(response)["Code"] == "BadRequestError"


# --- Extended JSON ------------------------------------------------------------


def test_extended_json_round_trip(client, stack, collection):
    oid = ObjectId()
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    stack.mongo.blog[collection].insert_one(
        {"_id": oid, "when": when, "price": Decimal128("12.345"), "raw": Binary(b"\x00\x01\xff"), "big": 2**40}
    )
    [doc] = find(client, collection)
    assert doc["_id"] == {"$oid": str(oid)}
    assert doc["when"] == {"$date": "2024-05-06T07:08:09.123Z"}
    assert doc["price"] == {"$numberDecimal": "12.345"}
    assert doc["raw"] == {"$binary": {"base64": "AAH/", "subType": "00"}}
    assert doc["big"] == 2**40
    # What a GET returns can be sent back as a filter...
    assert find(client, collection, filter={"_id": doc["_id"]}) == [doc]
    assert find(client, collection, filter={"when": doc["when"], "price": doc["price"]}) == [doc]
    # ... and as a document.
    copy = {**doc, "_id": {"$oid": str(ObjectId())}}
    insert(client, collection, copy)
    stored = stack.mongo.blog[collection].find_one({"_id": ObjectId(copy["_id"]["$oid"])})
    assert stored["when"] == when and stored["price"] == Decimal128("12.345") and stored["raw"] == b"\x00\x01\xff"


def test_date_filter_with_range(client, collection):
    insert(client, collection, [{"d": {"$date": f"2024-01-0{i}T00:00:00Z"}, "i": i} for i in range(1, 6)])
    docs = find(client, collection, filter={"d": {"$gt": {"$date": "2024-01-03T00:00:00Z"}}})
    assert [d["i"] for d in docs] == [4, 5]


# --- update -----------------------------------------------------------------


def test_patch_updates_matching_documents(client, stack, collection):
    insert(client, collection, [{"name": "jason", "rating": 3}, {"name": "brian", "rating": 5}])
    response = send(
        client, "PATCH", path(collection), {"filter": {"name": "jason"}, "update": {"$set": {"rating": 4}}}, ADMIN
    )
    assert response.status_code == 200
    assert body(response) == {"matched_count": 1, "modified_count": 1, "upserted_id": None}
    assert stack.mongo.blog[collection].find_one({"name": "jason"})["rating"] == 4
    assert stack.mongo.blog[collection].find_one({"name": "brian"})["rating"] == 5


def test_patch_upsert_returns_upserted_id(client, stack, collection):
    response = send(
        client,
        "PATCH",
        path(collection),
        {"filter": {"name": "zoe"}, "update": {"$set": {"rating": 1}}, "upsert": True},
        ADMIN,
    )
    upserted = body(response)["upserted_id"]
    assert body(response)["matched_count"] == 0
    assert stack.mongo.blog[collection].find_one({"_id": ObjectId(upserted["$oid"])})["name"] == "zoe"


@pytest.mark.parametrize(
    "payload",
    [
        {"filter": {"a": 1}, "update": {"rating": 4}},
        {"filter": {"a": 1}, "update": {}},
        {"filter": {"a": 1}},
        {"filter": {"a": 1}, "update": {"$set": {"b": 1}}, "upsert": "yes"},
        {"filter": {"a": 1}, "update": {"$set": {"b": 1}}, "multi": True},
        {"filter": [], "update": {"$set": {"b": 1}}},
        {"update": {"$set": {"b": 1}}},
        {"filter": {}, "update": {"$set": {"b": 1}}},
        [],
    ],
)
def test_bad_patch_is_400_and_changes_nothing(client, stack, collection, payload):
    insert(client, collection, {"a": 1})
    before = stack.mongo.blog[collection].find_one({})  # its revision included: not even that may change
    response = send(client, "PATCH", path(collection), payload, ADMIN)
    assert response.status_code == 400, response.body
    assert stack.mongo.blog[collection].find_one({}) == before


def test_patch_with_empty_filter_and_all_updates_everything(client, stack, collection):
    insert(client, collection, [{"a": 1}, {"a": 2}])
    response = send(
        client, "PATCH", path(collection) + "?all=true", {"filter": {}, "update": {"$set": {"b": 1}}}, ADMIN
    )
    assert body(response)["modified_count"] == 2


# --- delete -----------------------------------------------------------------


def test_delete_by_body_filter(client, stack, collection):
    insert(client, collection, [{"name": "jason"}, {"name": "brian"}])
    response = send(client, "DELETE", path(collection), {"filter": {"name": "jason"}}, ADMIN)
    assert response.status_code == 200
    assert body(response) == {"deleted_count": 1}
    assert [d["name"] for d in stack.mongo.blog[collection].find()] == ["brian"]


def test_delete_by_query_filter(client, stack, collection):
    insert(client, collection, [{"n": 1}, {"n": 2}, {"n": 3}])
    response = client.http.delete(f"{path(collection)}?filter=%7B%22n%22%3A%7B%22%24gte%22%3A2%7D%7D", headers=ADMIN)
    assert body(response) == {"deleted_count": 2}


@pytest.mark.parametrize("payload", [{"filter": {}}, {}, None])
def test_empty_delete_is_refused_and_leaves_data(client, stack, collection, payload):
    insert(client, collection, [{"n": 1}, {"n": 2}])
    response = send(client, "DELETE", path(collection), payload, ADMIN)
    assert response.status_code == 400
    assert "all=true" in body(response)["Message"]
    assert stack.mongo.blog[collection].count_documents({}) == 2


def test_empty_delete_with_all_deletes_everything(client, stack, collection):
    insert(client, collection, [{"n": 1}, {"n": 2}])
    response = send(client, "DELETE", path(collection) + "?all=true", {"filter": {}}, ADMIN)
    assert body(response) == {"deleted_count": 2}


def test_delete_with_filter_in_body_and_query_is_400(client, collection):
    response = send(client, "DELETE", path(collection) + "?filter=%7B%7D", {"filter": {"n": 1}}, ADMIN)
    assert response.status_code == 400


# --- scopes and names ---------------------------------------------------------


@pytest.mark.parametrize("route", ["/docdb/demodb/{c}", "/docdb/{db}/{c}"])
def test_demodb_routes_reach_demodb(client, stack, route, collection):
    url = route.format(db="demodb", c=collection)
    assert send(client, "POST", url, {"x": 1}, ADMIN).status_code == 201
    assert stack.mongo.demodb[collection].count_documents({}) == 1


def test_democollection_route_reaches_demodb_democollection(client, stack):
    marker = uuid.uuid4().hex
    assert send(client, "POST", "/docdb/demodb/democollection", {"marker": marker}, ADMIN).status_code == 201
    assert stack.mongo.demodb.democollection.count_documents({"marker": marker}) == 1
    docs = body(get(client, "/docdb/demodb/democollection", {"filter": json.dumps({"marker": marker})}, ADMIN))
    assert [d["marker"] for d in docs] == [marker]
    response = send(client, "DELETE", "/docdb/demodb/democollection", {"filter": {"marker": marker}}, ADMIN)
    assert body(response) == {"deleted_count": 1}


@pytest.mark.parametrize(
    "url",
    [
        "/docdb/bad.db/c",
        "/docdb/bad$db/c",
        "/docdb/" + "d" * 64 + "/c",
        "/docdb/db/" + "c" * 121,
        "/docdb/db/bad$coll",
        "/docdb/db/.hidden",
        '/docdb/a"b/c',
        "/docdb/a*b/c",
    ],
)
def test_invalid_names_are_400(client, url):
    response = get(client, url, headers=ADMIN)
    assert response.status_code == 400, response.body
    assert body(response)["Code"] == "BadRequestError"


@pytest.mark.parametrize(
    "url",
    [
        "/docdb/admin/users",
        "/docdb/config/x",
        "/docdb/local/startup_log",
        "/docdb/ADMIN/x",
        "/docdb/blog/system.users",
        "/docdb/demodb/system.profile",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_reserved_namespaces_are_403(client, stack, url, method):
    response = send(client, method, url, {"filter": {"a": 1}} if method == "DELETE" else {"a": 1}, ADMIN)
    assert response.status_code == 403
    assert body(response)["Code"] == "ForbiddenError"
