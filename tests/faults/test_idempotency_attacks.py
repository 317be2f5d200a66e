"""Attacks on the record-last ordering of keyed DocumentDB writes (chalicelib/docdb/idempotency.py).

A keyed write runs the write, then inserts the key's record holding the
response, then commits.  These tests try every route kind against that
ordering: a repeat while the first request is still in flight, real parallel
repeats on one document, a key whose record expired, a replay whose rolled-back
run must leave no trace, a write stopped by the server, and what a refused
repeat creates outside its transaction.

A first request "in flight" is simulated exactly: a transaction on the test's
own client that has run the first request's write and inserted its record
(the state just before its commit), left open while the repeat is sent, then
aborted.  No timing is involved.

Each test guards a fix (seen failing before it): a repeat in flight is a 409
on every route kind, a keyed write stopped at the server's time limit is a
503, a keyed Data API insert runs again after a conflict, and a 422 creates
no collection.  The one ``xfail(strict=True)`` is a known limitation; its
reason names it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from chalice import ChaliceViewError, Response
from chalice.app import Request

from chalicelib import idempotency
from chalicelib.docdb import documents
from chalicelib.docdb.client import MAX_TIME_MS_EXPIRED
from chalicelib.docdb.transaction import WRITE_CONFLICT
from tests.faults.test_idempotency import _event, _in_parallel, _service, keyed, new_key, records
from tests.support import ADMIN, body, commands_fail, create_key, data_api_action, data_api_namespace, send
from tools import local_stack

SCOPE = "user:apiuser"  # ADMIN's scope, and the Data API's for apiuser's key
COLLECTION_CREATED = (
    "a keyed write creates its target collection before its transaction (DocumentDB cannot create one inside "
    "a transaction), so a keyed DELETE of a missing document on a missing collection leaves it created, where "
    "the same request without a key creates nothing (README: what is not supported yet)"
)


@pytest.fixture
def api_key(stack) -> str:
    return create_key(stack, "apiuser")


def _expire(stack: Any, key: str) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    records(stack).update_one({"_id": idempotency.record_id(SCOPE, key)}, {"$set": {"expires_at": past}})


@contextlib.contextmanager
def first_in_flight(stack: Any, key: str, write: Callable[[Any], Any], with_record: bool = True) -> Iterator[None]:
    """A first request with ``key`` in flight: its write and (unless not yet) its record, uncommitted."""
    with stack.mongo.start_session() as session:
        session.start_transaction()
        try:
            write(session)
            if with_record:
                records(stack).insert_one(
                    {"_id": idempotency.record_id(SCOPE, key), "scope": SCOPE, "key": key}, session=session
                )
            yield
        finally:
            session.abort_transaction()


# --- 1. a repeat while the first request is in flight, on every route kind ---------------------


@dataclass
class Kind:
    """One keyed route: the documents before, the first request's write, and the repeat as sent."""

    seed: list[dict[str, Any]]
    first: Callable[[Any, Any], Any]  # (collection, session)
    repeat: Callable[[Any, str, str, str], Any]  # (client, collection, key, api key) -> response
    data_api: bool = False
    unset: list[str] = field(default_factory=list)


def _rest(method: str, path: str, payload: Any, headers: dict[str, str] | None = None) -> Callable[..., Any]:
    def repeat(client: Any, collection: str, key: str, _api_key: str) -> Any:
        return send(client, method, path.format(c=collection), payload, keyed({**ADMIN, **(headers or {})}, key))

    return repeat


def _action(name: str, fields: dict[str, Any]) -> Callable[..., Any]:
    def repeat(client: Any, collection: str, key: str, api_key: str) -> Any:
        sent = {**data_api_namespace(collection, "blog"), **fields}
        return data_api_action(client, name, sent, api_key, headers={"Idempotency-Key": key})

    return repeat


D1 = [{"_id": "d1", "k": "a", "n": 0}]
KINDS = {
    "document PATCH": Kind(
        D1,
        lambda c, s: c.update_one({"_id": "d1"}, {"$inc": {"n": 1}}, session=s),
        _rest("PATCH", "/docdb/blog/{c}/d1", {"$inc": {"n": 1}}),
    ),
    "document PUT replacing": Kind(
        D1, lambda c, s: c.replace_one({"_id": "d1"}, {"n": 5}, session=s), _rest("PUT", "/docdb/blog/{c}/d1", {"n": 5})
    ),
    "document PUT creating (If-None-Match: *)": Kind(
        [],
        lambda c, s: c.insert_one({"_id": "d1", "n": 5}, session=s),
        _rest("PUT", "/docdb/blog/{c}/d1", {"n": 5}, {"If-None-Match": "*"}),
    ),
    "document DELETE": Kind(
        D1, lambda c, s: c.delete_one({"_id": "d1"}, session=s), _rest("DELETE", "/docdb/blog/{c}/d1", None)
    ),
    "POST with an _id": Kind(
        [],
        lambda c, s: c.insert_one({"_id": "d1", "n": 1}, session=s),
        _rest("POST", "/docdb/blog/{c}", {"_id": "d1", "n": 1}),
    ),
    "collection PATCH": Kind(
        D1,
        lambda c, s: c.update_many({"k": "a"}, {"$inc": {"n": 1}}, session=s),
        _rest("PATCH", "/docdb/blog/{c}", {"filter": {"k": "a"}, "update": {"$inc": {"n": 1}}}),
    ),
    "collection DELETE": Kind(
        D1,
        lambda c, s: c.delete_many({"k": "a"}, session=s),
        _rest("DELETE", "/docdb/blog/{c}", {"filter": {"k": "a"}}),
    ),
    "Data API updateMany": Kind(
        D1,
        lambda c, s: c.update_many({"k": "a"}, {"$inc": {"n": 1}}, session=s),
        _action("updateMany", {"filter": {"k": "a"}, "update": {"$inc": {"n": 1}}}),
        True,
    ),
    "Data API deleteMany": Kind(
        D1, lambda c, s: c.delete_many({"k": "a"}, session=s), _action("deleteMany", {"filter": {"k": "a"}}), True
    ),
    "Data API replaceOne": Kind(
        D1,
        lambda c, s: c.replace_one({"_id": "d1"}, {"n": 7}, session=s),
        _action("replaceOne", {"filter": {"_id": "d1"}, "replacement": {"n": 7}}),
        True,
    ),
    "Data API insertMany with _ids": Kind(
        [],
        lambda c, s: c.insert_many([{"_id": "d1"}, {"_id": "d2"}], session=s),
        _action("insertMany", {"documents": [{"_id": "d1"}, {"_id": "d2"}]}),
        True,
    ),
    # Writes that touch nothing the first one wrote reach the record and answer 409 as designed.
    "Data API insertOne": Kind(
        [], lambda c, s: c.insert_one({"n": 1}, session=s), _action("insertOne", {"document": {"n": 1}}), True
    ),
}


@pytest.mark.parametrize(
    ("kind", "first_has_its_record"),
    # A first request still writing, before its record: the repeat's write meets the first's. (Data API
    # insertOne's write touches nothing of the first's, so with no record to meet it simply runs.)
    [pytest.param(name, True, id=f"{name}, record written") for name in KINDS]
    + [pytest.param(name, False, id=f"{name}, still writing") for name in KINDS if name != "Data API insertOne"],
)
def test_a_repeat_while_the_first_is_in_flight_is_409_in_flight_on_every_route_kind(
    client, stack, collection, api_key, kind, first_has_its_record
):
    spec = KINDS[kind]
    coll = stack.mongo.blog[collection]
    # A warm container: the records' index and the target are made once per container, outside any
    # transaction (a cold one's createIndexes would wait behind the first request's open transaction).
    warm = send(client, "DELETE", f"/docdb/blog/{collection}", {"filter": {"_id": "none"}}, keyed(ADMIN, new_key()))
    assert warm.status_code == 200, warm.body
    if spec.seed:
        coll.insert_many(spec.seed)
    key = new_key()
    with first_in_flight(stack, key, lambda session: spec.first(coll, session), first_has_its_record):
        response = spec.repeat(client, collection, key, api_key)
    # Nothing the repeat ran is left, whatever it answered.
    assert list(coll.find({}, {"_rev": 0}, sort=[("_id", 1)])) == spec.seed
    assert response.status_code == 409, response.body
    assert response.headers["Retry-After"] == "1"
    if spec.data_api:
        assert body(response)["error_code"] == "IdempotencyKeyInUse"
    else:
        assert body(response)["Code"] == "IdempotencyKeyInUse"


# --- 2. real parallel repeats on one document: applied once, every 2xx the same ----------------


def _status(result: Any) -> int:
    if isinstance(result, Response):
        return result.status_code
    assert isinstance(result, ChaliceViewError), repr(result)  # never a bare exception (a 500)
    return result.STATUS_CODE


PARALLEL = {
    "document PATCH": ("PATCH", {"$inc": {"n": 1}}, lambda d: d == {"_id": "d1", "k": "a", "n": 1}),
    "document PUT": ("PUT", {"n": 9}, lambda d: d == {"_id": "d1", "n": 9}),
    "document DELETE": ("DELETE", None, lambda d: d is None),
}


@pytest.mark.parametrize("kind", list(PARALLEL))
def test_parallel_repeats_on_one_document_apply_once_and_every_success_is_the_same_answer(stack, collection, kind):
    method, payload, applied_once = PARALLEL[kind]
    coll = stack.mongo.blog[collection]
    service = _service(local_stack.DOCDB_SECRET_ID, pool_size=10)
    try:
        for _ in range(3):
            coll.delete_many({})
            coll.insert_one({"_id": "d1", "k": "a", "n": 0})
            event = _event(method, "/docdb/{db}/{collection}/{id}", f"/docdb/blog/{collection}/d1",
                           {"db": "blog", "collection": collection, "id": "d1"}, payload, new_key(),
                           {"principalId": "apiuser", "grants": "*/*:rw"})  # fmt: skip
            results = _in_parallel(
                8, lambda e=event: documents.document(Request(e), "blog", collection, "d1", lambda: service)
            )
            statuses = [_status(r) for r in results]
            # 503 (kept conflicting): every attempt of a repeat met the first request's uncommitted write.
            assert set(statuses) <= {200, 204, 409, 503}, results
            successes = [r for r in results if isinstance(r, Response) and r.status_code < 300]
            assert successes, statuses
            assert len({(r.status_code, r.body, r.headers.get("ETag")) for r in successes}) == 1
            stored = coll.find_one({"_id": "d1"}, {"_rev": 0})
            assert applied_once(stored), stored
            if successes[0].headers.get("ETag"):
                assert coll.find_one({"_id": "d1"})["_rev"] == _rev_of(successes[0].headers["ETag"])
    finally:
        service.close()


def _rev_of(etag: str) -> Any:
    from bson import ObjectId

    assert etag.startswith('"r') and etag.endswith('"'), etag
    return ObjectId(etag[2:-1])


# --- 3. a key whose record expired, on the document routes -------------------------------------


def test_an_expired_key_on_a_document_put_runs_again_and_keeps_the_new_answer(client, stack, collection):
    path, key = f"/docdb/blog/{collection}/d1", new_key()
    first = send(client, "PUT", path, {"n": 1}, keyed(ADMIN, key))
    assert first.status_code == 201, first.body
    _expire(stack, key)
    again = send(client, "PUT", path, {"n": 1}, keyed(ADMIN, key))
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers  # replaced, run afresh
    assert again.headers["ETag"] != first.headers["ETag"]
    assert stack.mongo.blog[collection].find_one({"_id": "d1"})["_rev"] == _rev_of(again.headers["ETag"])
    replay = send(client, "PUT", path, {"n": 1}, keyed(ADMIN, key))  # the new record answers from now on
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["ETag"] == again.headers["ETag"]


def test_an_expired_key_on_a_delete_of_a_gone_document_is_404_and_the_key_is_free(client, stack, collection):
    path, key = f"/docdb/blog/{collection}/d1", new_key()
    assert send(client, "PUT", path, {"n": 1}, ADMIN).status_code == 201
    assert send(client, "DELETE", path, None, keyed(ADMIN, key)).status_code == 204
    _expire(stack, key)
    again = send(client, "DELETE", path, None, keyed(ADMIN, key))
    assert again.status_code == 404 and "Idempotent-Replayed" not in again.headers
    assert records(stack).count_documents({"_id": idempotency.record_id(SCOPE, key)}) == 0  # expired one removed
    assert send(client, "PUT", path, {"n": 2}, ADMIN).status_code == 201
    assert send(client, "DELETE", path, None, keyed(ADMIN, key)).status_code == 204  # runs: the key is free
    assert stack.mongo.blog[collection].count_documents({}) == 0


# --- 4. a replay's rolled-back run leaves no trace ----------------------------------------------


def test_document_replays_leave_no_trace_when_the_document_changed_since(client, stack, collection):
    coll = stack.mongo.blog[collection]
    path = f"/docdb/blog/{collection}/d1"
    # PUT creating, then someone deletes it: the replay's run re-creates it, inside a transaction never committed.
    put_key = new_key()
    created = send(client, "PUT", path, {"n": 1}, keyed(ADMIN, put_key))
    assert created.status_code == 201
    assert send(client, "DELETE", path, None, ADMIN).status_code == 204
    replay = send(client, "PUT", path, {"n": 1}, keyed(ADMIN, put_key))
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["Location"] == created.headers["Location"] and body(replay) == body(created)
    assert coll.count_documents({}) == 0  # not resurrected
    # DELETE, then someone re-creates it: the replay deletes nothing.
    assert send(client, "PUT", path, {"n": 2}, ADMIN).status_code == 201
    delete_key = new_key()
    assert send(client, "DELETE", path, None, keyed(ADMIN, delete_key)).status_code == 204
    recreated = send(client, "PUT", path, {"n": 3}, ADMIN)
    assert send(client, "DELETE", path, None, keyed(ADMIN, delete_key)).headers["Idempotent-Replayed"] == "true"
    assert coll.find_one({"_id": "d1"})["_rev"] == _rev_of(recreated.headers["ETag"])
    # PATCH: the replay's run bumps _rev and n inside its transaction; neither survives.
    patch_key = new_key()
    patched = send(client, "PATCH", path, {"$inc": {"n": 1}}, keyed(ADMIN, patch_key))
    again = send(client, "PATCH", path, {"$inc": {"n": 1}}, keyed(ADMIN, patch_key))
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == patched.headers["ETag"]
    stored = coll.find_one({"_id": "d1"})
    assert stored["n"] == 4 and stored["_rev"] == _rev_of(patched.headers["ETag"])


def test_data_api_bulk_writes_with_a_key_run_once_and_their_replays_change_nothing(client, stack, collection, api_key):
    coll = stack.mongo.blog[collection]
    ns = data_api_namespace(collection, "blog")

    def twice(action: str, fields: dict[str, Any], between: Callable[[], Any] = lambda: None) -> Any:
        header = {"Idempotency-Key": new_key()}
        first = data_api_action(client, action, {**ns, **fields}, api_key, headers=header)
        assert first.status_code == 200, first.body
        between()
        before = list(coll.find(sort=[("_id", 1)]))
        again = data_api_action(client, action, {**ns, **fields}, api_key, headers=header)
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.body
        assert body(again) == body(first)
        assert list(coll.find(sort=[("_id", 1)])) == before  # the replay applied nothing
        return body(first)

    inserted = twice("insertMany", {"documents": [{"k": "a", "n": 1}, {"k": "a", "n": 2}]})
    assert len(inserted["insertedIds"]) == 2 and coll.count_documents({}) == 2
    assert twice("updateMany", {"filter": {"k": "a"}, "update": {"$inc": {"n": 10}}}) == {
        "matchedCount": 2, "modifiedCount": 2}  # fmt: skip
    assert sorted(d["n"] for d in coll.find()) == [11, 12]
    # Someone adds a match after the first replaceOne / deleteMany: the replays must not touch it.
    twice("replaceOne", {"filter": {"n": 11}, "replacement": {"k": "b", "n": 0}},
          lambda: coll.insert_one({"k": "x", "n": 11}))  # fmt: skip
    assert coll.count_documents({"n": 11}) == 1 and coll.count_documents({"k": "b"}) == 1
    assert twice("deleteMany", {"filter": {"k": "a"}}, lambda: coll.insert_one({"k": "a", "late": True})) == {
        "deletedCount": 1}  # fmt: skip
    assert coll.count_documents({"k": "a", "late": True}) == 1


# --- 5. a write the server stops at its time limit ----------------------------------------------


@pytest.mark.parametrize(
    ("command", "method", "payload"),
    [
        ("insert", "POST", {"n": 9}),
        ("update", "PATCH", {"filter": {"n": {"$gte": 0}}, "update": {"$inc": {"n": 1}}}),
        ("delete", "DELETE", {"filter": {"n": {"$gte": 0}}}),
    ],
)
def test_a_keyed_write_stopped_at_the_servers_time_limit_is_503_nothing_changed(
    client, stack, collection, command, method, payload
):
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, [{"n": i} for i in range(3)], ADMIN).status_code == 201
    with commands_fail(stack.mongo, [command], MAX_TIME_MS_EXPIRED):
        response = send(client, method, path, payload, keyed(ADMIN, new_key()))
    assert sorted(d["n"] for d in stack.mongo.blog[collection].find()) == [0, 1, 2]
    # What the same write without a key answers (tests/faults/test_docdb_faults.py), and what it should.
    assert response.status_code == 503, response.body
    assert "nothing was changed" in body(response)["Message"]


def test_a_keyed_data_api_write_stopped_at_the_servers_time_limit_is_503(client, stack, collection, api_key):
    ns = data_api_namespace(collection, "blog")
    assert data_api_action(client, "insertOne", {**ns, "document": {"n": 1}}, api_key).status_code == 200
    with commands_fail(stack.mongo, ["update"], MAX_TIME_MS_EXPIRED):
        response = data_api_action(client, "updateMany", {**ns, "filter": {}, "update": {"$inc": {"n": 1}}},
                                   api_key, headers={"Idempotency-Key": new_key()})  # fmt: skip
    assert stack.mongo.blog[collection].find_one()["n"] == 1
    assert response.status_code == 503 and body(response)["error_code"] == "ServiceUnavailable", response.body


@pytest.mark.parametrize(
    ("command", "method", "payload", "status"),
    [
        ("update", "PATCH", {"filter": {"n": {"$gte": 0}}, "update": {"$inc": {"n": 1}}}, 200),
        ("delete", "DELETE", {"filter": {"n": {"$gte": 0}}}, 200),
        ("insert", "POST", {"n": 9}, 201),
    ],
)
def test_a_repeat_of_an_applied_write_whose_rerun_is_stopped_by_the_server_still_answers_the_kept_response(
    client, stack, collection, command, method, payload, status
):
    # The repeat runs the write again inside its transaction; when that run fails without changing
    # anything (here the server's time limit), the kept response still answers, not "nothing was changed".
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, [{"n": i} for i in range(3)], ADMIN).status_code == 201
    key = new_key()
    first = send(client, method, path, payload, keyed(ADMIN, key))
    assert first.status_code == status, first.body
    after_first = sorted(d["n"] for d in stack.mongo.blog[collection].find())
    with commands_fail(stack.mongo, [command], MAX_TIME_MS_EXPIRED):
        again = send(client, method, path, payload, keyed(ADMIN, key))
    assert again.status_code == status, again.body
    assert again.headers["Idempotent-Replayed"] == "true" and body(again) == body(first)
    assert sorted(d["n"] for d in stack.mongo.blog[collection].find()) == after_first


# --- 6. what a refused keyed request leaves outside its transaction -----------------------------


def _exists(stack: Any, name: str) -> bool:
    return bool(stack.mongo.blog.list_collection_names(filter={"name": name}))


def test_a_key_reused_for_another_collection_is_422_and_creates_nothing(client, stack, collection):
    key = new_key()
    assert send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, keyed(ADMIN, key)).status_code == 201
    response = send(client, "POST", f"/docdb/blog/{collection}_other", {"n": 1}, keyed(ADMIN, key))
    assert response.status_code == 422, response.body
    assert not _exists(stack, f"{collection}_other")


@pytest.mark.xfail(strict=True, reason=COLLECTION_CREATED)
def test_a_keyed_delete_of_a_missing_document_is_404_and_creates_nothing(client, stack, collection):
    unkeyed = send(client, "DELETE", f"/docdb/blog/{collection}_a/nope", None, ADMIN)
    assert unkeyed.status_code == 404 and not _exists(stack, f"{collection}_a")
    response = send(client, "DELETE", f"/docdb/blog/{collection}/nope", None, keyed(ADMIN, new_key()))
    assert response.status_code == 404, response.body
    assert not _exists(stack, collection)


# --- 7. a key already used for another request, on a request that is refused anyway -------------


def test_a_refused_request_with_a_key_used_for_another_answers_in_each_contracts_shape(
    client, stack, collection, api_key
):
    key = new_key()
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"n": 1}, keyed(ADMIN, key)).status_code == 201
    # REST: the request is validated before the key is looked at: its 400.
    bad = send(client, "PATCH", path, {"filter": {"n": 1}, "update": {"n": 2}}, keyed(ADMIN, key))
    assert bad.status_code == 400 and body(bad)["Code"] == "BadRequestError", bad.body
    # Data API: fields are checked inside the keyed run, so the kept record answers first: its 422.
    ns = data_api_namespace(collection, "blog")
    refused = data_api_action(client, "updateOne", {**ns, "filter": 5, "update": {"$set": {"n": 2}}}, api_key,
                              headers={"Idempotency-Key": key})  # fmt: skip
    assert refused.status_code == 422, refused.body
    assert set(body(refused)) == {"error", "error_code"} and body(refused)["error_code"] == "IdempotencyKeyMismatch"
    assert [d["n"] for d in stack.mongo.blog[collection].find()] == [1]
    # With a fresh key the Data API's own 400.
    fresh = data_api_action(client, "updateOne", {**ns, "filter": 5, "update": {"$set": {"n": 2}}}, api_key,
                            headers={"Idempotency-Key": new_key()})  # fmt: skip
    assert fresh.status_code == 400 and body(fresh)["error_code"] == "InvalidParameter", fresh.body
    assert json.loads(records(stack).find_one({"_id": idempotency.record_id(SCOPE, key)})["body"])["n"] == 1


# --- 8. a keyed Data API insert whose transaction is retried after a write conflict ------------------


@pytest.mark.parametrize(
    ("action", "fields"),
    [("insertOne", {"document": {"_id": "d1", "n": 1}}), ("insertMany", {"documents": [{"n": 1}, {"n": 2}]})],
)
def test_a_keyed_data_api_insert_retried_after_a_write_conflict_is_stored_once(
    client, stack, collection, api_key, action, fields
):
    ns = data_api_namespace(collection, "blog")
    warm = data_api_action(client, "deleteMany", {**ns, "filter": {"_id": "none"}}, api_key,
                           headers={"Idempotency-Key": new_key()})  # fmt: skip
    assert warm.status_code == 200, warm.body
    with commands_fail(stack.mongo, ["insert"], WRITE_CONFLICT, ("TransientTransactionError",)):
        response = data_api_action(client, action, {**ns, **fields}, api_key, headers={"Idempotency-Key": new_key()})
    assert response.status_code == 200, response.body
    assert stack.mongo.blog[collection].count_documents({}) == (1 if action == "insertOne" else 2)


def test_a_keyed_rest_insert_retried_after_a_write_conflict_is_stored_once(client, stack, collection):
    path = f"/docdb/blog/{collection}"
    warm = send(client, "DELETE", path, {"filter": {"_id": "none"}}, keyed(ADMIN, new_key()))
    assert warm.status_code == 200, warm.body
    with commands_fail(stack.mongo, ["insert"], WRITE_CONFLICT, ("TransientTransactionError",)):
        response = send(client, "POST", path, [{"n": 1}, {"n": 2}], keyed(ADMIN, new_key()))
    assert response.status_code == 201, response.body
    stored = list(stack.mongo.blog[collection].find(sort=[("n", 1)]))
    assert [d["n"] for d in stored] == [1, 2] and all("_rev" not in d for d in body(response))
    assert [d["_id"]["$oid"] for d in body(response)] == [str(d["_id"]) for d in stored]
