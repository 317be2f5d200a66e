"""The findings of the outside attack, replayed through the routes against the real servers (issue 11, point 5)."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.docdb import encoding
from chalicelib.docdb.views import insert_echo
from chalicelib.paging import MAX_PAGE_BYTES, lambda_size
from tests.support import ADMIN, body, get, next_url, send


def url(collection: str) -> str:
    return f"/docdb/blog/{collection}"


def ids(stack, collection: str) -> set:
    return {d["_id"] for d in stack.mongo.blog[collection].find({}, {"_id": 1})}


# --- a refused insert deletes nothing -----------------------------------------------------


@pytest.mark.parametrize("bad_id", [{"$regex": "^keep"}, {"$regularExpression": {"pattern": "^keep", "options": ""}},
                                    ["keep1"], {"$ref": "c", "$id": 1}])
def test_a_refused_insert_deletes_no_other_document(client, stack, collection, bad_id):
    keep = [{"_id": f"keep{i}"} for i in range(3)]
    assert send(client, "POST", url(collection), keep, ADMIN).status_code == 201
    response = send(client, "POST", url(collection), [{"_id": bad_id}, {"_id": "keep0"}], ADMIN)
    assert response.status_code == 400, response.body
    assert ids(stack, collection) == {"keep0", "keep1", "keep2"}


# --- operators next to $regex are not dropped ---------------------------------------------


def test_a_delete_with_regex_and_ne_keeps_what_ne_excludes(client, stack, collection):
    assert send(client, "POST", url(collection), [{"name": "n0"}, {"name": "n1"}], ADMIN).status_code == 201
    flt = {"filter": {"name": {"$regex": "^n", "$ne": "n0"}}}
    response = send(client, "DELETE", url(collection), flt, ADMIN)
    assert response.status_code == 200, response.body
    assert body(response) == {"deleted_count": 1}
    assert [d["name"] for d in stack.mongo.blog[collection].find()] == ["n0"]


def test_where_beside_regex_is_a_400(client, collection):
    flt = json.dumps({"name": {"$regex": "^n", "$where": "sleep(100)"}})
    assert get(client, url(collection), {"filter": flt}, ADMIN).status_code == 400


@pytest.mark.parametrize("inner", [{"$code": "x"}, {"$where": "x"}, {"$function": {"body": "x"}}])
def test_javascript_inside_a_dbref_is_never_stored(client, stack, collection, inner):
    doc = {"r": {"$ref": "c", "$id": inner}}
    response = send(client, "POST", url(collection), doc, ADMIN)
    assert response.status_code == 400, response.body
    assert ids(stack, collection) == set()


def test_a_deep_dbref_is_a_400_in_an_insert_and_in_a_get_filter(client, stack, collection):
    deep = json.loads('{"a": ' * 300 + "1" + "}" * 300)
    response = send(client, "POST", url(collection), {"r": {"$ref": "c", "$id": deep}}, ADMIN)
    assert response.status_code == 400, response.body
    assert ids(stack, collection) == set()
    flt = '{"r": {"$ref": "c", "$id": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}}"
    assert get(client, url(collection), {"filter": flt}, ADMIN).status_code == 400


def test_a_dbref_in_its_exact_shape_is_stored_and_read_back(client, stack, collection):
    ref = {"$ref": "other", "$id": {"$oid": "5f0000000000000000000000"}}
    stored = body(send(client, "POST", url(collection), {"r": ref}, ADMIN))
    assert stored["r"] == ref
    assert body(get(client, url(collection), headers=ADMIN))[0]["r"] == ref


# --- regex guard and extended mode ---------------------------------------------------------


@pytest.mark.parametrize("flt", [{"n": {"$regex": "^(a+) +$", "$options": "x"}}, {"n": {"$regex": "(?x)^(a+) +$"}},
                                 {"n": {"$regex": "^a", "$options": "q"}}, {"n": {"$regex": "\ud800"}}])
def test_dangerous_or_malformed_regexes_are_400(client, collection, flt):
    assert get(client, url(collection), {"filter": json.dumps(flt)}, ADMIN).status_code == 400


# --- poison documents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [{"$set": {".".join(["p"] * 300): 1}}, {"$rename": {"name": "$where"}}, {"$set": {"a.$function": 1}},
     [{"$set": {".".join(["p"] * 300): 1}}]],
)
def test_updates_that_would_poison_a_document_are_400(client, stack, collection, update):
    assert send(client, "POST", url(collection), {"name": "x"}, ADMIN).status_code == 201
    response = send(client, "PATCH", url(collection), {"filter": {"name": "x"}, "update": update}, ADMIN)
    assert response.status_code == 400, response.body
    assert list(stack.mongo.blog[collection].find({}, {"_id": 0, "_rev": 0})) == [{"name": "x"}]


def test_a_document_that_cannot_be_encoded_does_not_break_its_page(client, stack, collection):
    deep: dict = {"x": 1}
    for _ in range(300):
        deep = {"d": deep}
    stack.mongo.blog[collection].insert_many([{"_id": 1, "n": 1}, {"_id": 2, "deep": deep}, {"_id": 3, "n": 3}])
    response = get(client, url(collection), headers=ADMIN)
    assert response.status_code == 200, response.body[:300]
    page = body(response)
    assert [d["_id"] for d in page] == [1, 2, 3]
    assert page[0] == {"_id": 1, "n": 1} and page[2] == {"_id": 3, "n": 3}
    assert "cannot be returned" in page[1]["$error"]
    # A projection leaving out the deep field reads it.
    response = get(client, url(collection), {"projection": json.dumps({"deep": 0})}, ADMIN)
    assert body(response)[1] == {"_id": 2}


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"v": NaN}', b'{"v": Infinity}', b'{"v": 1e400}',
                                 b'{"v": {"$numberDouble": "-Infinity"}}'])
def test_nan_and_infinities_are_refused_not_stored_as_null(client, stack, collection, raw):
    response = send(client, "POST", url(collection), raw=raw, headers=ADMIN)
    assert response.status_code == 400, response.body
    assert ids(stack, collection) == set()


# --- insert echoes stay within the response budget ----------------------------------------------


def test_an_insert_whose_echo_would_not_fit_answers_with_its_id(client, stack, collection):
    text = '"' * 2_400_000  # 2 bytes each in the request, 4 in Lambda's response once echoed
    raw = json.dumps({"_id": "big", "s": text}, separators=(",", ":")).encode()
    assert len(raw) < 5 * 1024 * 1024
    response = send(client, "POST", url(collection), raw=raw, headers=ADMIN)
    assert response.status_code == 201, response.body[:300]
    assert lambda_size(response.body) <= MAX_PAGE_BYTES
    assert body(response) == {"_id": "big"}
    assert stack.mongo.blog[collection].find_one({"_id": "big"})["s"] == text


def test_an_insert_whose_echo_fits_answers_with_the_documents(client, collection):
    response = send(client, "POST", url(collection), [{"_id": 1, "s": "a"}, {"_id": 2, "s": "b"}], ADMIN)
    assert body(response) == [{"_id": 1, "s": "a"}, {"_id": 2, "s": "b"}]


def test_an_echo_falls_back_to_ids_then_to_a_count():
    stored = [{"_id": "x" * 100, "s": "y" * 1000} for _ in range(3)]
    assert json.loads(insert_echo(stored, False, max_bytes=2000)) == [{"_id": "x" * 100}] * 3
    assert json.loads(insert_echo(stored, False, max_bytes=200)) == {"inserted_count": 3}
    assert json.loads(insert_echo(stored, False)) == json.loads(encoding.dumps(stored))


# --- odd text is a 400 or 401, never a 5xx ----------------------------------------------------------


@pytest.mark.parametrize("header", ["Basic \u00e9\u00e9\u00e9", "Basic " + base64.b64encode(b"a:b").decode() + "\u00e9",
                                    "B\u00e4sic YTpi"])
def test_a_non_ascii_authorization_header_is_401(client, collection, header):
    assert get(client, url(collection), headers={"Authorization": header}).status_code == 401


def test_a_lone_surrogate_in_a_link_is_400(client):
    raw = b'{"link": "https://example.com/\\ud800"}'
    assert send(client, "POST", "/link", raw=raw).status_code == 400


def test_a_lone_surrogate_in_a_movie_is_400(client):
    raw = b'{"favorite_movie": "Alien \\ud800"}'
    assert send(client, "PUT", "/movies/someone", raw=raw).status_code == 400


def test_a_lone_surrogate_in_a_movie_name_is_400_or_404(stack, use):
    from chalicelib import aws
    from chalicelib.errors import BadRequestError, NotFoundError
    from chalicelib.tables.movies import MovieStore
    from tools import local_stack

    store = MovieStore(aws.client("dynamodb"), local_stack.MOVIES_TABLE)
    with pytest.raises(BadRequestError):
        store.put("name \ud800", "Alien")
    with pytest.raises(NotFoundError):
        store.get("name \ud800")


# --- response headers ---------------------------------------------------------------------------------


def test_authenticated_responses_are_not_cached_or_sniffed(client, collection):
    response = get(client, url(collection), headers=ADMIN)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_public_responses_are_not_sniffed(client):
    response = get(client, "/health")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_raw_quote_or_angle_bracket_in_the_path_never_reaches_the_link_header(client, collection):
    name = f'{collection}">x<'
    assert send(client, "POST", url(name), [{"n": 1}, {"n": 2}], ADMIN).status_code == 201
    response = get(client, url(name), {"limit": 1}, ADMIN)
    assert response.status_code == 200, response.body
    link = response.headers["Link"]
    target = link[link.index("<") + 1 : link.rindex(">")]
    assert '"' not in target and ">" not in target and "<" not in target
    assert next_url(response) is not None


@pytest.mark.parametrize("header", ["apiKey", "api-key"])
def test_data_api_responses_to_a_key_are_not_cached(client, header):
    body_ = {"dataSource": "x", "database": "blog", "collection": "c", "filter": {}}
    response = send(client, "POST", "/action/find", body_, {header: "not-a-real-key"})
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("accept", ["application/json", "application/ejson"])
def test_a_document_that_cannot_be_encoded_does_not_break_a_data_api_find(client, stack, collection, accept):
    from tests.support import data_api_action, data_api_namespace

    deep: dict = {"x": 1}
    for _ in range(300):
        deep = {"d": deep}
    stack.mongo["learn-data-api"][collection].insert_many([{"_id": 1, "n": 1}, {"_id": 2, "deep": deep}])
    response = data_api_action(client, "find", {**data_api_namespace(collection), "filter": {}},
                               headers=ADMIN, accept=accept)
    assert response.status_code == 200, response.body[:300]
    documents = json.loads(response.body)["documents"]
    assert len(documents) == 2
    # orjson (plain JSON) stops at 254 levels, so the deep one is a stub; canonical EJSON writes it whole.
    assert ("$error" in documents[1]) == (accept == "application/json")
