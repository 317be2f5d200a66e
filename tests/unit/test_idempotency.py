"""The key's parts that need no backend: the fingerprint, the key's syntax, the kept response."""

from __future__ import annotations

import pytest
from chalice import Response
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import idempotency
from chalicelib.errors import BadRequestError, UnprocessableEntityError

texts = st.text(max_size=12)
queries = st.dictionaries(texts, st.lists(texts, min_size=1, max_size=3), max_size=4)
requests = st.fixed_dictionaries({
    "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]),
    "path": st.sampled_from(["/link", "/link/{link_id}", "/movies/{name}", "/docdb/{db}/{collection}"]),
    "path_params": st.dictionaries(st.sampled_from(["db", "collection", "name", "link_id"]), texts, max_size=2),
    "query": queries,
    "body": st.binary(max_size=64),
})  # fmt: skip


def fingerprint(request: dict) -> dict[str, str]:
    return idempotency.fingerprint(
        request["method"], request["path"], request["path_params"], list(request["query"].items()), request["body"]
    )


@given(requests, st.randoms())
def test_equal_requests_have_equal_fingerprints(request, random):
    names = list(request["query"].items())
    random.shuffle(names)  # the order of different names in a query string means nothing
    same = {**request, "query": dict(names), "path_params": dict(reversed(list(request["path_params"].items())))}
    assert fingerprint(request) == fingerprint(same)


@given(requests, requests)
def test_requests_that_differ_in_any_part_have_different_fingerprints(one, other):
    a, b = fingerprint(one), fingerprint(other)
    same_query = {k: list(v) for k, v in one["query"].items()} == {k: list(v) for k, v in other["query"].items()}
    assert (a["method"] == b["method"]) == (one["method"] == other["method"])
    assert (a["path"] == b["path"]) == (one["path"] == other["path"] and one["path_params"] == other["path_params"])
    assert (a["query"] == b["query"]) == same_query
    assert (a["body"] == b["body"]) == (one["body"] == other["body"])


@given(requests)
def test_the_order_of_one_names_values_counts(request):
    name, values = "f", ["1", "2"]
    forward = {**request, "query": {**request["query"], name: values}}
    backward = {**request, "query": {**request["query"], name: values[::-1]}}
    assert fingerprint(forward)["query"] != fingerprint(backward)["query"]


@pytest.mark.parametrize("key", ["a", "x" * 255, "order 42/retry #1", "~!@#$%^&*()"])
def test_printable_ascii_keys_of_1_to_255_characters_are_accepted(key):
    assert idempotency.parse_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "new\nline", "café", "\x7f"])
def test_other_keys_are_400(key):
    with pytest.raises(BadRequestError):
        idempotency.parse_key(key)


def test_scope_and_key_cannot_be_confused_in_the_record_id():
    assert idempotency.record_id("user:a", "b:c") != idempotency.record_id("user:a:b", "c")
    assert idempotency.record_id("user:a", "k") != idempotency.record_id("user:b", "k")


def test_a_kept_response_replays_status_body_and_the_headers_that_matter():
    response = Response(body={"link_id": "x"}, status_code=201,
                        headers={"Location": "/api/link/x", "X-Other": "no", "ETag": '"1"'})  # fmt: skip
    kept = idempotency.Kept.from_record(idempotency.Kept.of(response).to_record())
    replay = kept.replay()
    assert (replay.status_code, replay.body) == (201, '{"link_id":"x"}')
    assert replay.headers == {"Location": "/api/link/x", "ETag": '"1"', "Content-Type": "application/json",
                              "Idempotent-Replayed": "true"}  # fmt: skip


def test_a_different_request_with_the_key_is_422_naming_each_part_that_differs():
    first = {"method": "POST", "path": "p", "query": "q", "body": "b"}
    claim = idempotency.Claim("id", "user:a", "k", {**first, "body": "other", "query": "other"}, now=0.0)
    with pytest.raises(UnprocessableEntityError, match="different query and body"):
        idempotency.answer_kept(claim, first, idempotency.Kept(201, "{}"))
    same = idempotency.Claim("id", "user:a", "k", first, now=0.0)
    assert idempotency.answer_kept(same, first, idempotency.Kept(201, "{}")).headers["Idempotent-Replayed"] == "true"


def _claim() -> idempotency.Claim:
    fp = {"method": "DELETE", "path": "p", "query": "q", "body": "b"}
    return idempotency.Claim("id", "route:DELETE /link/{link_id}", "k", fp, now=0.0)


def test_a_cancelled_dynamodb_transaction_is_read_by_its_reasons():
    """moto never answers TransactionConflict (it does not isolate transactions), so the mapping is pinned here."""
    from chalicelib.errors import NotFoundError, ServiceUnavailableError
    from chalicelib.tables.idempotency import DynamoRecords, DynamoTransaction

    tx = DynamoTransaction()
    tx.add({"Delete": {}}, refused=lambda: NotFoundError("no link"))
    none, failed = {"Code": "None"}, {"Code": "ConditionalCheckFailed"}
    conflict = DynamoRecords._cancelled(_claim(), tx, [none, {"Code": "TransactionConflict"}])
    assert conflict.status_code == 409 and conflict.headers["Retry-After"] == "1"
    with pytest.raises(NotFoundError):
        DynamoRecords._cancelled(_claim(), tx, [failed, none])
    kept = {"status": {"N": "204"}, "body": {"S": ""}, "headers": {"M": {}},
            "fingerprint": {"M": {k: {"S": v} for k, v in _claim().fingerprint.items()}}}  # fmt: skip
    replay = DynamoRecords._cancelled(_claim(), tx, [failed, {**failed, "Item": kept}])  # the record wins
    assert replay.status_code == 204 and replay.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(ServiceUnavailableError):
        DynamoRecords._cancelled(_claim(), tx, [{"Code": "ThrottlingError"}, none])
