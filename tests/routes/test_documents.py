"""One document as a resource: /docdb/{db}/{collection}/{id} with strong ETags (issue 13)."""

from __future__ import annotations

import json

import pytest
from bson import Int64, ObjectId

from tests.support import ADMIN, basic, body, get, send


def doc_path(collection: str, doc_id: str, db: str = "blog") -> str:
    return f"/docdb/{db}/{collection}/{doc_id}"


def with_tag(etag: str, header: str = "If-Match") -> dict[str, str]:
    return {**ADMIN, header: etag}


def put(client, collection, doc_id, document, headers=None, db="blog"):
    return send(client, "PUT", doc_path(collection, doc_id, db), document, {**ADMIN, **(headers or {})})


def read(client, collection, doc_id, headers=None, **params):
    return get(client, doc_path(collection, doc_id), params or None, {**ADMIN, **(headers or {})})


def etag_of(client, collection, doc_id) -> str:
    response = read(client, collection, doc_id)
    assert response.status_code == 200, response.body
    return response.headers["ETag"]


# --- GET and HEAD -------------------------------------------------------------


def test_get_returns_the_document_and_a_strong_quoted_etag(client, stack, collection):
    stack.mongo.blog[collection].insert_one({"_id": "brian", "rating": 5})
    response = read(client, collection, "brian")
    assert response.status_code == 200
    assert body(response) == {"_id": "brian", "rating": 5}
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")


def test_get_missing_document_is_404(client, collection):
    assert read(client, collection, "nobody").status_code == 404


def test_head_has_the_etag_and_no_body(client, stack, collection):
    stack.mongo.blog[collection].insert_one({"_id": "brian", "rating": 5})
    response = client.http.request("HEAD", doc_path(collection, "brian"), headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["ETag"] == etag_of(client, collection, "brian")
    assert response.body in (b"", "", None)
    assert client.http.request("HEAD", doc_path(collection, "nobody"), headers=ADMIN).status_code == 404


def test_if_none_match_round_trip_is_304_with_the_etag_and_no_body(client, collection):
    put(client, collection, "brian", {"rating": 5})
    etag = etag_of(client, collection, "brian")
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        response = read(client, collection, "brian", {"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.headers["ETag"] == etag
        assert response.body in (b"", "")
    send(client, "PATCH", doc_path(collection, "brian"), {"$inc": {"rating": 1}}, ADMIN)
    response = read(client, collection, "brian", {"If-None-Match": etag})
    assert response.status_code == 200 and body(response)["rating"] == 6
    assert response.headers["ETag"] != etag


def test_get_with_a_stale_if_match_is_412(client, collection):
    put(client, collection, "brian", {"rating": 5})
    assert read(client, collection, "brian", {"If-Match": '"r000000000000000000000000"'}).status_code == 412


def test_projection_works_as_on_find_and_keeps_the_documents_etag(client, collection):
    put(client, collection, "brian", {"rating": 5, "name": "Brian", "tags": [1, 2, 3]})
    etag = etag_of(client, collection, "brian")
    response = read(client, collection, "brian", projection=json.dumps({"name": 1}))
    assert body(response) == {"_id": "brian", "name": "Brian"}
    assert response.headers["ETag"] == etag
    response = read(client, collection, "brian", projection=json.dumps({"tags": {"$slice": 1}, "name": 0}))
    assert body(response) == {"_id": "brian", "rating": 5, "tags": [1]}


# --- ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "params", "stored_id"),
    [
        ("5f0c0a0b0c0d0e0f10111213", {}, ObjectId("5f0c0a0b0c0d0e0f10111213")),
        ("5F0C0A0B0C0D0E0F10111213", {"id_type": "objectid"}, ObjectId("5f0c0a0b0c0d0e0f10111213")),
        ("5f0c0a0b0c0d0e0f10111213", {"id_type": "string"}, "5f0c0a0b0c0d0e0f10111213"),
        ("brian", {}, "brian"),
        ("42", {}, "42"),
        ("42", {"id_type": "string"}, "42"),
        ("42", {"id_type": "int"}, 42),
        ("-7", {"id_type": "int"}, -7),
        ("9223372036854775807", {"id_type": "int"}, Int64(2**63 - 1)),
        ("café", {}, "café"),  # API Gateway hands path parameters over decoded
    ],
)
def test_every_id_type_reaches_its_document(client, stack, collection, segment, params, stored_id):
    stack.mongo.blog[collection].insert_one({"_id": stored_id, "v": 1})
    query = f"?id_type={params['id_type']}" if params else ""
    response = get(client, doc_path(collection, segment) + query, headers=ADMIN)
    assert response.status_code == 200, response.body
    assert body(response)["v"] == 1
    patched = send(client, "PATCH", doc_path(collection, segment) + query, {"$set": {"v": 2}}, ADMIN)
    assert patched.status_code == 200
    assert stack.mongo.blog[collection].find_one({"_id": stored_id})["v"] == 2


def test_a_string_id_and_an_int_id_are_different_documents(client, stack, collection):
    stack.mongo.blog[collection].insert_many([{"_id": 42, "t": "int"}, {"_id": "42", "t": "str"}])
    assert body(read(client, collection, "42"))["t"] == "str"
    assert body(read(client, collection, "42", id_type="int"))["t"] == "int"


@pytest.mark.parametrize(
    ("segment", "id_type"),
    [("xyz", "objectid"), ("5f0c0a0b0c0d0e0f1011121", "objectid"), ("4.5", "int"), ("1e3", "int"),
     ("9223372036854775808", "int"), ("+1", "int"), ("abc", "int"), ("abc", "uuid")],
)
def test_an_id_that_does_not_parse_as_the_forced_type_is_400(client, collection, segment, id_type):
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = send(client, method, doc_path(collection, segment) + f"?id_type={id_type}", {"$set": {"a": 1}},
                        ADMIN)  # fmt: skip
        assert response.status_code == 400, (method, response.body)


# --- PUT ------------------------------------------------------------------------


def test_put_creates_with_201_and_location_then_replaces_with_200(client, stack, collection):
    response = put(client, collection, "brian", {"rating": 5})
    assert response.status_code == 201
    assert response.headers["Location"] == doc_path(collection, "brian")
    assert body(response) == {"_id": "brian", "rating": 5}
    first = response.headers["ETag"]
    assert first == etag_of(client, collection, "brian")
    response = put(client, collection, "brian", {"name": "Brian"})
    assert response.status_code == 200
    assert body(response) == {"_id": "brian", "name": "Brian"}
    assert response.headers["ETag"] not in (first, None)
    stored = stack.mongo.blog[collection].find_one({"_id": "brian"})
    assert {k: v for k, v in stored.items() if k != "_rev"} == {"_id": "brian", "name": "Brian"}


def test_put_location_keeps_a_forced_id_type(client, collection):
    response = send(client, "PUT", doc_path(collection, "7") + "?id_type=int", {"a": 1}, ADMIN)
    assert response.status_code == 201
    assert response.headers["Location"] == doc_path(collection, "7") + "?id_type=int"


def test_put_with_a_matching_body_id_is_accepted_and_a_different_one_is_400(client, collection):
    assert put(client, collection, "brian", {"_id": "brian", "a": 1}).status_code == 201
    assert put(client, collection, "7", {"_id": 7, "a": 1}).status_code == 400
    assert put(client, collection, "brian", {"_id": "joe", "a": 1}).status_code == 400


def test_put_if_match_replaces_only_the_current_version(client, stack, collection):
    put(client, collection, "brian", {"v": 1})
    etag = etag_of(client, collection, "brian")
    response = put(client, collection, "brian", {"v": 2}, {"If-Match": etag})
    assert response.status_code == 200
    assert put(client, collection, "brian", {"v": 3}, {"If-Match": etag}).status_code == 412
    assert stack.mongo.blog[collection].find_one({"_id": "brian"})["v"] == 2
    assert put(client, collection, "brian", {"v": 4}, {"If-Match": response.headers["ETag"]}).status_code == 200


def test_put_if_match_on_a_missing_document_is_412_and_creates_nothing(client, stack, collection):
    for header in ('"r5f0c0a0b0c0d0e0f10111213"', "*"):
        assert put(client, collection, "ghost", {"v": 1}, {"If-Match": header}).status_code == 412
    assert stack.mongo.blog[collection].count_documents({}) == 0


def test_put_if_none_match_star_creates_only(client, stack, collection):
    assert put(client, collection, "brian", {"v": 1}, {"If-None-Match": "*"}).status_code == 201
    assert put(client, collection, "brian", {"v": 2}, {"If-None-Match": "*"}).status_code == 412
    assert stack.mongo.blog[collection].find_one({"_id": "brian"})["v"] == 1


def test_put_if_match_star_replaces_only_an_existing_document(client, collection):
    put(client, collection, "brian", {"v": 1})
    assert put(client, collection, "brian", {"v": 2}, {"If-Match": "*"}).status_code == 200


# --- PATCH ----------------------------------------------------------------------


def test_patch_returns_the_updated_document_and_its_new_etag(client, collection):
    put(client, collection, "brian", {"rating": 5})
    before = etag_of(client, collection, "brian")
    response = send(client, "PATCH", doc_path(collection, "brian"), {"$inc": {"rating": 1}}, with_tag(before))
    assert response.status_code == 200
    assert body(response) == {"_id": "brian", "rating": 6}
    assert response.headers["ETag"] != before
    assert response.headers["ETag"] == etag_of(client, collection, "brian")


def test_patch_takes_an_update_pipeline(client, collection):
    put(client, collection, "brian", {"a": 2})
    response = send(client, "PATCH", doc_path(collection, "brian"), [{"$set": {"b": {"$add": ["$a", 1]}}}], ADMIN)
    assert response.status_code == 200
    assert body(response) == {"_id": "brian", "a": 2, "b": 3}


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(client, stack, collection):
    put(client, collection, "brian", {"rating": 5})
    stale = etag_of(client, collection, "brian")
    send(client, "PATCH", doc_path(collection, "brian"), {"$inc": {"rating": 1}}, ADMIN)
    response = send(client, "PATCH", doc_path(collection, "brian"), {"$inc": {"rating": 10}}, with_tag(stale))
    assert response.status_code == 412
    assert stack.mongo.blog[collection].find_one({"_id": "brian"})["rating"] == 6


def test_patch_missing_document_is_404_with_or_without_if_match(client, stack, collection):
    for headers in ({}, {"If-Match": '"r5f0c0a0b0c0d0e0f10111213"'}, {"If-Match": "*"}, {"If-None-Match": "*"}):
        response = send(client, "PATCH", doc_path(collection, "ghost"), {"$set": {"a": 1}}, {**ADMIN, **headers})
        assert response.status_code == 404, headers
    assert stack.mongo.blog[collection].count_documents({}) == 0


def test_patch_refuses_operators_outside_the_allowlist(client, collection):
    put(client, collection, "brian", {"a": 1})
    response = send(client, "PATCH", doc_path(collection, "brian"), {"$where": "1"}, ADMIN)
    assert response.status_code == 400
    response = send(client, "PATCH", doc_path(collection, "brian"), {"a": 2}, ADMIN)
    assert response.status_code == 400


# --- DELETE ---------------------------------------------------------------------


def test_delete_is_204_then_404(client, stack, collection):
    put(client, collection, "brian", {"a": 1})
    assert send(client, "DELETE", doc_path(collection, "brian"), headers=ADMIN).status_code == 204
    assert stack.mongo.blog[collection].count_documents({}) == 0
    assert send(client, "DELETE", doc_path(collection, "brian"), headers=ADMIN).status_code == 404


def test_delete_honours_if_match(client, stack, collection):
    put(client, collection, "brian", {"a": 1})
    etag = etag_of(client, collection, "brian")
    send(client, "PATCH", doc_path(collection, "brian"), {"$set": {"a": 2}}, ADMIN)
    assert send(client, "DELETE", doc_path(collection, "brian"), headers=with_tag(etag)).status_code == 412
    assert stack.mongo.blog[collection].count_documents({}) == 1
    fresh = etag_of(client, collection, "brian")
    assert send(client, "DELETE", doc_path(collection, "brian"), headers=with_tag(fresh)).status_code == 204
    assert send(client, "DELETE", doc_path(collection, "brian"), headers=with_tag(fresh)).status_code == 404


def test_delete_if_none_match_star_on_an_existing_document_is_412(client, stack, collection):
    put(client, collection, "brian", {"a": 1})
    headers = {**ADMIN, "If-None-Match": "*"}
    assert send(client, "DELETE", doc_path(collection, "brian"), headers=headers).status_code == 412
    assert stack.mongo.blog[collection].count_documents({}) == 1


# --- ETags: every write changes them, forged ones never match -------------------------------


@pytest.mark.parametrize(
    "tag",
    ['"forged"', '""', '"r5f0c0a0b0c0d0e0f10111213"', '"h00000000000000000000000000000000"', 'W/"x"',
     '"r' + "z" * 24 + '"', '"\x80\xff"'],
)
def test_a_forged_etag_is_412_never_500(client, stack, collection, tag):
    put(client, collection, "brian", {"a": 1})
    for method, payload in (("PUT", {"a": 2}), ("PATCH", {"$set": {"a": 2}}), ("DELETE", None)):
        response = send(client, method, doc_path(collection, "brian"), payload, with_tag(tag))
        assert response.status_code == 412, (method, tag, response.body)
    assert stack.mongo.blog[collection].find_one({"_id": "brian"})["a"] == 1


def test_a_weak_etag_never_satisfies_if_match(client, collection):
    put(client, collection, "brian", {"a": 1})
    etag = etag_of(client, collection, "brian")
    response = send(client, "PATCH", doc_path(collection, "brian"), {"$set": {"a": 2}}, with_tag(f"W/{etag}"))
    assert response.status_code == 412
    response = send(client, "PATCH", doc_path(collection, "brian"), {"$set": {"a": 2}}, with_tag(f'"x", W/"y", {etag}'))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header", ["abc", '"unterminated', 'W/abc', '"a" "b"', '"a",*', "* *", '"a"b', 'w/"a"', '"tab\there"'],
)
def test_a_malformed_condition_header_is_400(client, collection, header):
    put(client, collection, "brian", {"a": 1})
    for name in ("If-Match", "If-None-Match"):
        response = read(client, collection, "brian", {name: header})
        assert response.status_code == 400, (name, header)
        response = send(client, "PATCH", doc_path(collection, "brian"), {"$set": {"a": 2}}, with_tag(header, name))
        assert response.status_code == 400, (name, header)


def test_patch_by_filter_on_the_collection_changes_the_etag_of_every_document_it_modified(client, collection):
    for name in ("a", "b", "c"):
        put(client, collection, name, {"group": 1 if name != "c" else 2})
    before = {name: etag_of(client, collection, name) for name in ("a", "b", "c")}
    response = send(client, "PATCH", f"/docdb/blog/{collection}",
                    {"filter": {"group": 1}, "update": {"$set": {"seen": True}}}, ADMIN)  # fmt: skip
    assert body(response)["modified_count"] == 2
    after = {name: etag_of(client, collection, name) for name in ("a", "b", "c")}
    assert after["a"] != before["a"] and after["b"] != before["b"]
    assert after["c"] == before["c"]
    # and the old tags no longer let a conditional write through
    response = send(client, "PATCH", doc_path(collection, "a"), {"$set": {"x": 1}}, with_tag(before["a"]))
    assert response.status_code == 412


def test_patch_by_filter_with_a_pipeline_changes_the_etag_too(client, collection):
    put(client, collection, "a", {"n": 1})
    before = etag_of(client, collection, "a")
    send(client, "PATCH", f"/docdb/blog/{collection}",
         {"filter": {"_id": "a"}, "update": [{"$set": {"n": {"$add": ["$n", 1]}}}]}, ADMIN)  # fmt: skip
    assert etag_of(client, collection, "a") != before


def test_inserted_documents_get_a_revision_and_responses_never_show_it(client, stack, collection):
    stored = body(send(client, "POST", f"/docdb/blog/{collection}", [{"_id": "a"}, {"_id": "b"}], ADMIN))
    assert stored == [{"_id": "a"}, {"_id": "b"}]
    assert all(isinstance(d["_rev"], ObjectId) for d in stack.mongo.blog[collection].find())
    assert body(get(client, f"/docdb/blog/{collection}", headers=ADMIN)) == [{"_id": "a"}, {"_id": "b"}]
    assert body(read(client, collection, "a")) == {"_id": "a"}
    assert etag_of(client, collection, "a")[1] == "r"


# --- documents written outside the API ----------------------------------------------


def test_a_document_written_outside_the_api_has_a_usable_strong_etag(client, stack, collection):
    stack.mongo.blog[collection].insert_one({"_id": "legacy", "v": 1})
    etag = etag_of(client, collection, "legacy")
    assert etag == etag_of(client, collection, "legacy")
    assert read(client, collection, "legacy", {"If-None-Match": etag}).status_code == 304
    # changed outside the API: the tag changes, and the old one no longer writes
    stack.mongo.blog[collection].update_one({"_id": "legacy"}, {"$set": {"v": 2}})
    assert etag_of(client, collection, "legacy") != etag
    response = send(client, "PATCH", doc_path(collection, "legacy"), {"$set": {"v": 3}}, with_tag(etag))
    assert response.status_code == 412
    assert stack.mongo.blog[collection].find_one({"_id": "legacy"})["v"] == 2
    # the current tag does, and the write gives the document a revision
    current = etag_of(client, collection, "legacy")
    response = send(client, "PATCH", doc_path(collection, "legacy"), {"$set": {"v": 3}}, with_tag(current))
    assert response.status_code == 200
    assert response.headers["ETag"] != current
    assert isinstance(stack.mongo.blog[collection].find_one({"_id": "legacy"})["_rev"], ObjectId)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_conditional_put_and_delete_on_a_document_written_outside_the_api(client, stack, collection, method):
    stack.mongo.blog[collection].insert_one({"_id": "legacy", "v": 1})
    etag = etag_of(client, collection, "legacy")
    stack.mongo.blog[collection].update_one({"_id": "legacy"}, {"$set": {"v": 2}})
    payload = {"v": 9} if method == "PUT" else None
    assert send(client, method, doc_path(collection, "legacy"), payload, with_tag(etag)).status_code == 412
    current = etag_of(client, collection, "legacy")
    assert send(client, method, doc_path(collection, "legacy"), payload, with_tag(current)).status_code in (200, 204)


# --- the reserved revision field ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "where", "payload"),
    [
        ("POST", "collection", {"_rev": 1}),
        ("POST", "collection", [{"a": 1}, {"_rev": {"$oid": "5f0c0a0b0c0d0e0f10111213"}}]),
        ("PUT", "collection", {"_rev": "x"}),
        ("PATCH", "collection", {"filter": {}, "update": {"$set": {"_rev": 1}}}),
        ("PATCH", "collection", {"filter": {}, "update": {"$unset": {"_rev": ""}}}),
        ("PATCH", "collection", {"filter": {}, "update": {"$rename": {"_rev": "old"}}}),
        ("PATCH", "collection", {"filter": {}, "update": {"$rename": {"a": "_rev"}}}),
        ("PATCH", "collection", {"filter": {}, "update": {"$setOnInsert": {"_rev.x": 1}}, "upsert": True}),
        ("PATCH", "collection", {"filter": {}, "update": [{"$set": {"_rev": 1}}]}),
        ("PATCH", "collection", {"filter": {}, "update": [{"$addFields": {"_rev.a": 1}}]}),
        ("PATCH", "collection", {"filter": {}, "update": [{"$unset": "_rev"}]}),
        ("PATCH", "collection", {"filter": {}, "update": [{"$unset": ["a", "_rev"]}]}),
        ("PUT", "document", {"_rev": 1, "a": 1}),
        ("PATCH", "document", {"$set": {"_rev": 1}}),
        ("PATCH", "document", {"$inc": {"_rev": 1}}),
        ("PATCH", "document", {"$currentDate": {"_rev": True}}),
        ("PATCH", "document", {"$unset": {"_rev": ""}}),
        ("PATCH", "document", {"$rename": {"a": "_rev"}}),
        ("PATCH", "document", [{"$set": {"_rev": "$a"}}]),
        ("PATCH", "document", [{"$unset": ["_rev"]}]),
    ],
)
def test_the_reserved_revision_field_is_refused_everywhere(client, stack, collection, method, where, payload):
    put(client, collection, "a", {"a": 1})
    etag = etag_of(client, collection, "a")
    target = f"/docdb/blog/{collection}" + ("?all=true" if where == "collection" else "/a")
    response = send(client, method, target, payload, ADMIN)
    assert response.status_code == 400, response.body
    assert "_rev" in body(response)["Message"]
    assert etag_of(client, collection, "a") == etag
    assert stack.mongo.blog[collection].count_documents({}) == 1


def test_a_nested_field_named_rev_is_an_ordinary_field(client, collection):
    response = put(client, collection, "a", {"meta": {"_rev": 3}})
    assert response.status_code == 201
    assert body(read(client, collection, "a")) == {"_id": "a", "meta": {"_rev": 3}}


def test_an_upsert_whose_filter_names_a_revision_still_gets_a_fresh_one(client, stack, collection):
    response = send(client, "PATCH", f"/docdb/blog/{collection}",
                    {"filter": {"_id": "u", "_rev": "forged"}, "update": {"$set": {"a": 1}}, "upsert": True},
                    ADMIN)  # fmt: skip
    assert response.status_code == 200
    assert isinstance(stack.mongo.blog[collection].find_one({"_id": "u"})["_rev"], ObjectId)


# --- grants, names and the scoped routes ---------------------------------------------


def test_grants_apply_per_method(client, stack):
    stack.mongo.demodb.democollection.replace_one({"_id": "g"}, {"_id": "g", "v": 1}, upsert=True)
    reader = basic("reader", "readerpass")
    assert get(client, "/docdb/demodb/democollection/g", headers=reader).status_code == 200
    assert client.http.request("HEAD", "/docdb/demodb/democollection/g", headers=reader).status_code == 200
    for method in ("PUT", "PATCH", "DELETE"):
        response = send(client, method, "/docdb/demodb/democollection/g", {"$set": {"v": 2}}, reader)
        assert response.status_code == 403, method
    assert get(client, "/docdb/blog/other/g", headers=reader).status_code == 403
    assert get(client, "/docdb/blog/other/g").status_code == 401


@pytest.mark.parametrize("prefix", ["/docdb/demodb/democollection", "/docdb/demodb/{c}", "/docdb/blog/{c}"])
def test_the_scoped_routes_serve_the_same_resource(client, stack, collection, prefix):
    base = prefix.replace("{c}", collection)
    response = send(client, "PUT", f"{base}/scoped-{collection}", {"v": 1}, ADMIN)
    assert response.status_code == 201
    db, coll = base.split("/")[2:4]
    assert stack.mongo[db][coll].find_one({"_id": f"scoped-{collection}"})["v"] == 1
    assert get(client, f"/docdb/{db}/{coll}/scoped-{collection}", headers=ADMIN).headers["ETag"] == response.headers[
        "ETag"]
    assert send(client, "DELETE", f"{base}/scoped-{collection}", headers=ADMIN).status_code == 204


def test_reserved_namespaces_are_refused_before_the_database(client):
    assert get(client, "/docdb/admin/users/x", headers=ADMIN).status_code == 403
    assert get(client, "/docdb/blog/system.views/x", headers=ADMIN).status_code == 403
    assert get(client, "/docdb/bad.name/c/x", headers=ADMIN).status_code == 400


def test_etag_and_location_are_exposed_to_browsers(client, collection):
    response = put(client, collection, "cors", {"a": 1})
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]


# --- conditions a revision filter cannot express: read, decide, write on the exact state ----------


def test_head_with_a_matching_if_none_match_is_304(client, collection):
    put(client, collection, "brian", {"a": 1})
    etag = etag_of(client, collection, "brian")
    headers = {**ADMIN, "If-None-Match": etag}
    assert client.http.request("HEAD", doc_path(collection, "brian"), headers=headers).status_code == 304


def test_put_if_none_match_with_tags_writes_only_when_none_match(client, stack, collection):
    put(client, collection, "brian", {"v": 1})
    etag = etag_of(client, collection, "brian")
    assert put(client, collection, "brian", {"v": 2}, {"If-None-Match": f'"other", {etag}'}).status_code == 412
    assert put(client, collection, "brian", {"v": 3}, {"If-None-Match": '"other"'}).status_code == 200
    assert put(client, collection, "new", {"v": 1}, {"If-None-Match": '"other"'}).status_code == 201
    assert stack.mongo.blog[collection].find_one({"_id": "brian"})["v"] == 3


def test_if_match_and_if_none_match_together_must_both_hold(client, collection):
    put(client, collection, "brian", {"v": 1})
    etag = etag_of(client, collection, "brian")
    target = doc_path(collection, "brian")
    both = {"If-Match": etag, "If-None-Match": etag}
    assert send(client, "PATCH", target, {"$set": {"v": 2}}, {**ADMIN, **both}).status_code == 412
    both = {"If-Match": etag, "If-None-Match": '"other"'}
    assert send(client, "PATCH", target, {"$set": {"v": 2}}, {**ADMIN, **both}).status_code == 200


def test_an_update_that_changes_the_id_is_400(client, stack, collection):
    put(client, collection, "brian", {"v": 1})
    response = send(client, "PATCH", doc_path(collection, "brian"), {"$set": {"_id": "joe"}}, ADMIN)
    assert response.status_code == 400
    assert stack.mongo.blog[collection].count_documents({"_id": "brian"}) == 1


def test_a_unique_index_conflict_on_put_is_409(client, stack, collection):
    stack.mongo.blog[collection].create_index("email", unique=True)
    put(client, collection, "a", {"email": "x@example.com"})
    assert put(client, collection, "b", {"email": "x@example.com"}).status_code == 409
    assert put(client, collection, "c", {"email": "x@example.com"}, {"If-None-Match": "*"}).status_code == 409
    assert send(client, "PATCH", doc_path(collection, "d"), {"$set": {"email": "x@example.com"}},
                ADMIN).status_code == 404
    put(client, collection, "d", {"email": "y@example.com"})
    response = send(client, "PATCH", doc_path(collection, "d"), {"$set": {"email": "x@example.com"}}, ADMIN)
    assert response.status_code == 409


def test_projection_on_a_document_written_outside_the_api_belongs_to_its_etag(client, stack, collection):
    stack.mongo.blog[collection].insert_one({"_id": "legacy", "a": 1, "b": 2})
    response = read(client, collection, "legacy", projection=json.dumps({"a": 1}))
    assert body(response) == {"_id": "legacy", "a": 1}
    assert response.headers["ETag"] == etag_of(client, collection, "legacy")
    assert response.headers["ETag"].startswith('"h')


def test_the_aggregation_route_never_shows_the_revision(client, collection):
    put(client, collection, "a", {"n": 1})
    response = send(client, "POST", f"/docdb/blog/{collection}/_aggregate", {"pipeline": [{"$match": {}}]}, ADMIN)
    assert body(response) == [{"_id": "a", "n": 1}]
