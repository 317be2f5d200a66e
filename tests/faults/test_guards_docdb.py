"""Guards of the DocumentDB path that a plausible slip would break silently.

Each test here was checked by planting the slip it names and seeing it fail
(issue 18).  Faults come from the real server: SecantusDB runs with test
commands on, and its ``failCommand`` failpoint is scoped to the app's own
connections (``appName: docdb-rest``) so the test's client keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from bson import Regex

from chalicelib.docdb import allowlist, query, transaction
from chalicelib.docdb import client as docdb_client
from chalicelib.errors import BadRequestError
from tests.support import ADMIN, APP_NAME, body, get, next_url, send


@pytest.fixture
def fail_command(stack) -> Iterator[Any]:
    """Arm the server's failCommand failpoint for the app's connections; off afterwards."""

    def arm(commands: list[str], code: int, mode: Any = "alwaysOn") -> None:
        stack.mongo.admin.command(
            "configureFailPoint", "failCommand", mode=mode,
            data={"failCommands": commands, "errorCode": code, "appName": APP_NAME},
        )  # fmt: skip

    try:
        yield arm
    finally:
        stack.mongo.admin.command("configureFailPoint", "failCommand", mode="off")


def _assert_503_with_retry_after(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.body
    assert int(response.headers["Retry-After"]) > 0
    payload = body(response)
    assert payload["Code"] in ("ServiceUnavailableError", "ConfigurationError")
    return payload


# --- 4. an open-ended {n,} quantifier repeats -----------------------------------------

OPEN_ENDED = ["(a{1,})+", "^(a{0,})+$", "(?:ab{1,})*c", "(a+){1,}", "(a{1,}){1,}b", "(?:x{2}y{1,})+z"]


@pytest.mark.parametrize("pattern", OPEN_ENDED)
def test_an_open_ended_quantifier_counts_as_repetition(pattern):
    assert allowlist.nested_quantifier(pattern)
    for condition in ({"$regex": pattern}, Regex(pattern), {"$not": Regex(pattern)}):
        with pytest.raises(BadRequestError, match="repeats a group"):
            query.as_filter({"a": condition})


def test_a_nested_open_ended_quantifier_is_400_through_the_route(client, collection):
    response = get(client, f"/docdb/blog/{collection}", {"filter": json.dumps({"a": {"$regex": "^(a{1,})+$"}})}, ADMIN)
    assert response.status_code == 400
    assert "repeats a group" in body(response)["Message"]


@pytest.mark.parametrize("pattern", ["a{1,}", "(ab){1,}", "(a{1})+", "(a{0,1})+", "x{0,}y"])
def test_a_single_open_ended_quantifier_passes(pattern):
    assert not allowlist.nested_quantifier(pattern)


# --- 5. a failed undo of a partial insert is reported ---------------------------------


def test_a_batch_insert_cut_by_a_failover_inserts_nothing(client, stack, collection, fail_command):
    """The batch is one transaction (issue 11): there is no partial insert to undo, so none can remain."""
    coll = stack.mongo.blog[collection]
    coll.insert_one({"_id": "taken"})
    fail_command(["insert"], 91, mode={"times": 1})  # a failover as the batch is written
    response = send(client, "POST", f"/docdb/blog/{collection}",
                    [{"_id": "first"}, {"_id": "second"}, {"_id": "third"}], ADMIN)  # fmt: skip
    _assert_503_with_retry_after(response)
    assert sorted(d["_id"] for d in coll.find()) == ["taken"]


def test_a_partial_insert_whose_undo_works_inserts_nothing(client, stack, collection):
    coll = stack.mongo.blog[collection]
    coll.insert_one({"_id": "taken"})
    response = send(client, "POST", f"/docdb/blog/{collection}",
                    [{"_id": "first"}, {"_id": "second"}, {"_id": "taken"}, {"_id": "fourth"}], ADMIN)  # fmt: skip
    assert response.status_code == 409
    assert "nothing was inserted" in body(response)["Message"]
    assert [d["_id"] for d in coll.find()] == ["taken"]


# --- 6. paging through ties sees every document once -----------------------------------


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_paging_through_tied_sort_keys_sees_every_document_once(client, stack, collection, direction, limit):
    """Ties may come back in any order, and the order may change between
    pages: here an index on the sort key is built after the first page, in
    the middle of a run of ties, which turns the server's tie order around.  The walk must still see each
    document exactly once, in sort order."""
    documents = [{"k": i % 3, "n": i} for i in range(40)]
    assert send(client, "POST", f"/docdb/blog/{collection}", documents, ADMIN).status_code == 201
    url: str | None = f"/docdb/blog/{collection}?" + urlencode({"sort": json.dumps({"k": direction}), "limit": limit})
    seen: list[dict[str, Any]] = []
    pages = 0
    while url is not None:
        if pages == 1:
            stack.mongo.blog[collection].create_index([("k", -direction)])
        response = get(client, url, headers=ADMIN)
        assert response.status_code == 200, response.body
        seen.extend(body(response))
        url = next_url(response)
        pages += 1
    assert sorted(d["n"] for d in seen) == list(range(40)), "a document was skipped or seen twice"
    keys = [d["k"] for d in seen]
    assert keys == sorted(keys, reverse=direction == -1)


# --- 7. busy and failing-over servers are 503 with Retry-After ----------------------------

FAILOVER_CODES = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]


@pytest.mark.parametrize("code", FAILOVER_CODES)
def test_a_write_refused_by_a_busy_or_failing_over_server_is_503(client, stack, collection, fail_command, code):
    fail_command(["insert"], code, mode={"times": 1})
    response = send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, ADMIN)
    _assert_503_with_retry_after(response)


@pytest.mark.parametrize("code", [6, 89, 262, 9001])
def test_an_update_refused_by_a_busy_server_is_503(client, stack, collection, fail_command, code):
    stack.mongo.blog[collection].insert_one({"n": 1})
    # The update runs in a transaction, which is run again after a transient failure: busy every time.
    fail_command(["update"], code, mode={"times": transaction.ATTEMPTS})
    response = send(client, "PATCH", f"/docdb/blog/{collection}", {"filter": {"n": 1}, "update": {"$set": {"m": 2}}},
                    ADMIN)  # fmt: skip
    _assert_503_with_retry_after(response)
    assert "m" not in stack.mongo.blog[collection].find_one({"n": 1})


@pytest.mark.parametrize("code", [6, 89, 91, 262, 10107])
def test_a_find_against_a_server_that_stays_busy_is_503(client, stack, collection, fail_command, monkeypatch, code):
    """The driver retries a read on these codes until the request's deadline;
    what is left when it runs out is the server's failure, not a slow query.

    Whether the driver then raises the server's last error or its own "would
    exceed time limit" depends on timing, so the request is made a few times.
    """
    stack.mongo.blog[collection].insert_one({"n": 1})
    monkeypatch.setattr(docdb_client, "REQUEST_TIMEOUT_S", 0.5)  # the 8 s deadline, shortened for the test
    fail_command(["find"], code)
    for _ in range(3):
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
        payload = _assert_503_with_retry_after(response)
        assert "narrow the filter" not in payload["Message"]


def test_a_find_that_fails_over_once_is_retried_and_served(client, stack, collection, fail_command):
    stack.mongo.blog[collection].insert_one({"n": 1})
    fail_command(["find"], 262, mode={"times": 1})
    response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
    assert response.status_code == 200, response.body
    assert [d["n"] for d in body(response)] == [1]


def test_a_find_the_server_stops_at_its_time_limit_is_still_400(client, stack, collection):
    """The other code 50: the server ran this query to its maxTimeMS.  That is
    the query's cost, so the caller is told to narrow it, not to retry it."""
    stack.mongo.blog[collection].insert_one({"n": 1})
    stack.mongo.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode={"times": 1})
    try:
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
    finally:
        stack.mongo.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode="off")
    assert response.status_code == 400, response.body
    assert "narrow the filter" in body(response)["Message"]
    assert "Retry-After" not in response.headers
