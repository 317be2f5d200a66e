"""Safe retries (issue 14): ``Idempotency-Key`` makes every write happen exactly once.

Against the real backends: SecantusDB behind the loopback proxy that loses
replies (tests/support.py), and moto behind a small HTTP stub that forwards a
DynamoDB call and then drops its answer.  Each lost-reply test checks the
one thing that matters: after the retry with the same key there is exactly
one effect, and the retry answers what the first request did.

A document PUT (``/docdb/{db}/{collection}/{id}``) comes with issue 13's
routes; its test belongs there, written like the inserts here.

Parallel requests with one key are tested on DocumentDB only: the local
moto (tools/moto_server.py) runs transactions one at a time and never
cancels one with TransactionConflict, so DynamoDB's answer to concurrent
ones (TransactionConflict, answered 409 here) cannot be reached against it.
"""

from __future__ import annotations

import datetime
import http.client
import http.server
import json
import os
import ssl
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import Request

import app as app_module
from chalicelib import aws, idempotency
from chalicelib.docdb import client as docdb_client
from chalicelib.docdb import views
from chalicelib.docdb.client import DocdbConnection
from chalicelib.docdb.idempotency import COLLECTION, DATABASE
from chalicelib.docdb.service import CollectionService
from chalicelib.secrets import SecretsLoader
from chalicelib.tables.idempotency import DynamoRecords
from chalicelib.tables.links import LinkStore
from chalicelib.tables.movies import MovieStore
from tests.support import ADMIN, Proxy, basic, body, dynamodb_through, get, proxy_event, send
from tools import local_stack

OTHER = basic("demowriter", "demowriterpass")  # may write demodb/*


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def new_key() -> str:
    return f"k-{uuid.uuid4()}"


def assert_outcome_unknown(response: Any) -> None:
    assert response.status_code == 503, response.body
    assert int(response.headers["Retry-After"]) > 0
    payload = json.loads(response.body)
    assert payload["Code"] == "WriteOutcomeUnknown"
    assert "same Idempotency-Key" in payload["Message"]


def lose_every_commit(proxy: Proxy) -> None:
    """Lose every commit answer until keep_replies(): the driver retries a commit until the request's deadline."""
    proxy.lose_reply_to("commitTransaction", times=1000)


def records(stack: Any) -> Any:
    return stack.mongo[DATABASE][COLLECTION]


# --- fixtures: backends that lose replies ------------------------------------------


def _service(secret_id: str, pool_size: int = 2) -> CollectionService:
    secrets = SecretsLoader(lambda: aws.client("secretsmanager"), ttl_seconds=300)
    return CollectionService(DocdbConnection(secrets, secret_id, os.environ["DOCDB_CA_FILE"], pool_size))


@pytest.fixture
def docdb_proxy(stack, use, monkeypatch) -> Iterator[Proxy]:
    """The app's collection service reaching SecantusDB through a proxy that can lose a reply.

    The request's deadline is cut to 2 s: the driver retries a lost commit until it runs out.
    """
    monkeypatch.setattr(docdb_client, "REQUEST_TIMEOUT_S", 2.0)
    tls = ssl.create_default_context(cafile=str(stack.secantus.ca_file))
    proxy = Proxy(stack.secantus.port, upstream_tls=tls).start()
    secret_id = f"test/docdb-idem-{uuid.uuid4().hex[:8]}"
    local_stack.put_secret(stack.secrets, secret_id, {**stack.secantus.secret(), "port": proxy.port, "ssl": False})
    service = _service(secret_id)
    use(collections=service)
    try:
        yield proxy
    finally:
        proxy.stop()
        service.close()


class LosingDynamo(http.server.ThreadingHTTPServer):
    """Forwards DynamoDB calls to moto; drops the answer to the next ``lose`` TransactWriteItems."""

    daemon_threads = True

    def __init__(self, moto_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _LosingHandler)
        self.moto_port = moto_port
        self.lose = 0
        self.lost = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _LosingHandler(http.server.BaseHTTPRequestHandler):
    server: LosingDynamo

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        moto = http.client.HTTPConnection("127.0.0.1", self.server.moto_port, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            moto.request("POST", self.path, payload, headers)
            answer = moto.getresponse()
            data = answer.read()
        finally:
            moto.close()
        if self.headers.get("X-Amz-Target", "").endswith("TransactWriteItems") and self.server.lose > 0:
            self.server.lose -= 1
            self.server.lost += 1
            self.close_connection = True  # moto applied it; the caller never hears
            return
        self.send_response(answer.status)
        skip = ("content-length", "transfer-encoding", "connection", "date", "server")
        for name, value in answer.getheaders():
            if name.lower() not in skip:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def losing_dynamo(stack, use, monkeypatch) -> Iterator[LosingDynamo]:
    """The app's table stores and records built by the app's own client factory, aimed at the stub."""
    with dynamodb_through(LosingDynamo(stack.moto.port), monkeypatch) as stub:
        use(links=LinkStore(aws.client("dynamodb"), local_stack.LINKS_TABLE),
            movies=MovieStore(aws.client("dynamodb"), local_stack.MOVIES_TABLE),
            table_records=DynamoRecords(aws.client("dynamodb"), local_stack.IDEMPOTENCY_TABLE))  # fmt: skip
        yield stub


# --- DocumentDB: a lost reply, then the retry with the same key ------------------------


def test_insert_one_whose_commit_answer_is_lost_is_stored_once_and_replayed(client, stack, collection, docdb_proxy):
    path, key = f"/docdb/blog/{collection}", new_key()
    lose_every_commit(docdb_proxy)
    assert_outcome_unknown(send(client, "POST", path, {"n": 1}, keyed(ADMIN, key)))
    docdb_proxy.keep_replies()
    assert set(docdb_proxy.lost) == {"commitTransaction"}
    retry = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    assert retry.status_code == 201, retry.body
    assert retry.headers["Idempotent-Replayed"] == "true"
    (stored,) = stack.mongo.blog[collection].find()
    assert body(retry) == {"_id": {"$oid": str(stored["_id"])}, "n": 1}


def test_insert_one_whose_insert_answer_is_lost_changed_nothing_and_runs_on_retry(
    client, stack, collection, docdb_proxy
):
    path, key = f"/docdb/blog/{collection}", new_key()
    docdb_proxy.lose_reply_to("insert")  # the key's record: the first statement of the transaction
    failed = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    assert failed.status_code == 503 and "nothing was changed" in body(failed)["Message"]
    assert stack.mongo.blog[collection].count_documents({}) == 0
    retry = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    assert retry.status_code == 201, retry.body
    assert "Idempotent-Replayed" not in retry.headers  # it ran now, for the first time
    assert stack.mongo.blog[collection].count_documents({}) == 1


def test_insert_many_whose_commit_answer_is_lost_is_stored_once_and_replayed(client, stack, collection, docdb_proxy):
    path, key = f"/docdb/blog/{collection}", new_key()
    batch = [{"n": i} for i in range(5)]
    lose_every_commit(docdb_proxy)
    assert_outcome_unknown(send(client, "POST", path, batch, keyed(ADMIN, key)))
    docdb_proxy.keep_replies()
    retry = send(client, "POST", path, batch, keyed(ADMIN, key))
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    stored = list(stack.mongo.blog[collection].find(sort=[("n", 1)]))
    assert [d["n"] for d in stored] == [0, 1, 2, 3, 4]
    assert [d["_id"]["$oid"] for d in body(retry)] == [str(d["_id"]) for d in stored]


def test_patch_whose_commit_answer_is_lost_is_applied_once_and_replayed(client, stack, collection, docdb_proxy):
    path, key = f"/docdb/blog/{collection}", new_key()
    documents = [{"k": "a", "n": 1}, {"k": "a", "n": 10}, {"k": "b", "n": 0}]
    assert send(client, "POST", path, documents, ADMIN).status_code == 201
    update = {"filter": {"k": "a"}, "update": {"$inc": {"n": 1}}}
    lose_every_commit(docdb_proxy)
    assert_outcome_unknown(send(client, "PATCH", path, update, keyed(ADMIN, key)))
    docdb_proxy.keep_replies()
    retry = send(client, "PATCH", path, update, keyed(ADMIN, key))
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert body(retry) == {"matched_count": 2, "modified_count": 2, "upserted_id": None}
    assert sorted(d["n"] for d in stack.mongo.blog[collection].find({"k": "a"})) == [2, 11]  # once, not twice


def test_delete_whose_commit_answer_is_lost_is_applied_once_and_replayed(client, stack, collection, docdb_proxy):
    path, key = f"/docdb/blog/{collection}", new_key()
    assert send(client, "POST", path, [{"k": "a"}, {"k": "a"}, {"k": "b"}], ADMIN).status_code == 201
    lose_every_commit(docdb_proxy)
    assert_outcome_unknown(send(client, "DELETE", path, {"filter": {"k": "a"}}, keyed(ADMIN, key)))
    docdb_proxy.keep_replies()
    # Someone else adds another match meanwhile: the retry must not delete it.
    assert send(client, "POST", path, {"k": "a", "late": True}, ADMIN).status_code == 201
    retry = send(client, "DELETE", path, {"filter": {"k": "a"}}, keyed(ADMIN, key))
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert body(retry) == {"deleted_count": 2}
    assert sorted(d["k"] for d in stack.mongo.blog[collection].find()) == ["a", "b"]


def test_document_put_whose_commit_answer_is_lost_is_stored_once_and_replayed(client, stack, collection, docdb_proxy):
    path, key = f"/docdb/blog/{collection}/doc-1", new_key()
    lose_every_commit(docdb_proxy)
    assert_outcome_unknown(send(client, "PUT", path, {"n": 1}, keyed(ADMIN, key)))
    docdb_proxy.keep_replies()
    retry = send(client, "PUT", path, {"n": 1}, keyed(ADMIN, key))
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true", retry.body
    assert body(retry) == {"_id": "doc-1", "n": 1}
    (stored,) = stack.mongo.blog[collection].find()
    # The kept ETag is the stored document's: a conditional write with it goes through.
    assert retry.headers["ETag"] == f'"r{stored["_rev"]}"'
    conditional = {**ADMIN, "If-Match": retry.headers["ETag"]}
    assert send(client, "PATCH", path, {"$inc": {"n": 1}}, conditional).status_code == 200


def test_document_patch_and_delete_with_a_key_run_once_and_replay(client, stack, collection):
    path = f"/docdb/blog/{collection}/doc-2"
    assert send(client, "PUT", path, {"n": 1}, ADMIN).status_code == 201
    patch_key, delete_key = new_key(), new_key()
    first = send(client, "PATCH", path, {"$inc": {"n": 1}}, keyed(ADMIN, patch_key))
    again = send(client, "PATCH", path, {"$inc": {"n": 1}}, keyed(ADMIN, patch_key))
    assert first.status_code == again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert body(again) == body(first) == {"_id": "doc-2", "n": 2} and again.headers["ETag"] == first.headers["ETag"]
    assert stack.mongo.blog[collection].find_one({"_id": "doc-2"})["n"] == 2  # applied once
    assert send(client, "DELETE", path, None, keyed(ADMIN, delete_key)).status_code == 204
    replay = send(client, "DELETE", path, None, keyed(ADMIN, delete_key))
    assert replay.status_code == 204 and replay.headers["Idempotent-Replayed"] == "true"


def test_a_repeat_whose_write_would_now_be_refused_still_answers_the_kept_response(client, stack, collection):
    # The record is written after the write, so a repeat runs the write (then undoes it): when that run is
    # refused because the first one happened (its _id now exists, its If-Match no longer matches), the
    # kept response still answers.
    key = new_key()
    first = send(client, "POST", f"/docdb/blog/{collection}", {"_id": "own-id", "n": 1}, keyed(ADMIN, key))
    again = send(client, "POST", f"/docdb/blog/{collection}", {"_id": "own-id", "n": 1}, keyed(ADMIN, key))
    assert first.status_code == again.status_code == 201, again.body
    assert again.headers["Idempotent-Replayed"] == "true" and body(again) == body(first)
    path = f"/docdb/blog/{collection}/own-id"
    etag = send(client, "GET", path, None, ADMIN).headers["ETag"]
    put_key = new_key()
    conditional = keyed({**ADMIN, "If-Match": etag}, put_key)
    first = send(client, "PUT", path, {"n": 2}, conditional)
    again = send(client, "PUT", path, {"n": 2}, conditional)
    assert first.status_code == again.status_code == 200, again.body
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == first.headers["ETag"]
    assert stack.mongo.blog[collection].find_one({"_id": "own-id"})["n"] == 2
    # Without a kept response, the refusal is the answer, and nothing is kept.
    refused = send(client, "PUT", path, {"n": 3}, keyed({**ADMIN, "If-Match": etag}, new_key()))
    assert refused.status_code == 412, refused.body
    assert records(stack).count_documents({"scope": "user:apiuser", "fingerprint.method": "PUT",
                                           "status": 412}) == 0  # fmt: skip


def test_data_api_writes_with_a_key_run_once_and_replay_in_the_data_api_shape(client, stack, collection):
    from tests.support import create_key, data_api_action, data_api_namespace

    api_key = create_key(stack, "apiuser")
    ns = data_api_namespace(collection, "blog")
    key = new_key()
    header = {"Idempotency-Key": key}
    first = data_api_action(client, "insertOne", {**ns, "document": {"n": 1}}, api_key, headers=header)
    again = data_api_action(client, "insertOne", {**ns, "document": {"n": 1}}, api_key, headers=header)
    assert first.status_code == again.status_code == 200, again.body
    assert again.headers["Idempotent-Replayed"] == "true" and body(again) == body(first)
    assert stack.mongo.blog[collection].count_documents({}) == 1
    other = data_api_action(client, "insertOne", {**ns, "document": {"n": 2}}, api_key, headers=header)
    assert other.status_code == 422 and body(other)["error_code"] == "IdempotencyKeyMismatch"
    update = {**ns, "filter": {"n": 1}, "update": {"$inc": {"n": 10}}}
    update_key = new_key()
    for _ in range(2):
        response = data_api_action(client, "updateOne", update, api_key, headers={"Idempotency-Key": update_key})
        assert response.status_code == 200 and body(response) == {"matchedCount": 1, "modifiedCount": 1}
    assert stack.mongo.blog[collection].find_one()["n"] == 11  # applied once


# --- DynamoDB: a lost reply, then the retry with the same key ----------------------------


def _links_to(stack: Any, url: str) -> list[str]:
    items = stack.dynamodb.scan(TableName=local_stack.LINKS_TABLE)["Items"]
    return [item["link_id"]["S"] for item in items if item["link"]["S"] == url]


def test_post_link_whose_answer_is_lost_is_stored_once_and_replayed(client, stack, losing_dynamo):
    url, key = f"https://example.com/{uuid.uuid4()}", new_key()
    losing_dynamo.lose = 3  # every attempt botocore makes
    assert_outcome_unknown(send(client, "POST", "/link", {"link": url}, {"Idempotency-Key": key}))
    assert losing_dynamo.lost == 3
    retry = send(client, "POST", "/link", {"link": url}, {"Idempotency-Key": key})
    assert retry.status_code == 201, retry.body
    assert retry.headers["Idempotent-Replayed"] == "true"
    (link_id,) = _links_to(stack, url)
    assert body(retry) == {"link_id": link_id}
    assert retry.headers["Location"].endswith(f"/link/{link_id}")


def test_post_link_whose_first_answer_is_lost_is_settled_by_botocores_own_retry(client, stack, losing_dynamo):
    url, key = f"https://example.com/{uuid.uuid4()}", new_key()
    losing_dynamo.lose = 1
    response = send(client, "POST", "/link", {"link": url}, {"Idempotency-Key": key})
    assert response.status_code == 201, response.body
    assert losing_dynamo.lost == 1
    assert _links_to(stack, url) == [body(response)["link_id"]]


def test_put_movie_whose_answer_is_lost_is_stored_once_and_replayed(client, stack, losing_dynamo):
    name, key = f"idem-{uuid.uuid4().hex[:8]}", new_key()
    losing_dynamo.lose = 3
    assert_outcome_unknown(send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"}, {"Idempotency-Key": key}))
    # Someone else changes the favorite meanwhile: the retry must not overwrite it.
    assert send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Ran"}).status_code == 200
    retry = send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"}, {"Idempotency-Key": key})
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert body(retry) == {"name": name, "favorite_movie": "Heat"}
    assert body(get(client, f"/movies/{name}")) == {"name": name, "favorite_movie": "Ran"}


def test_delete_link_replays_its_204_and_a_404_is_not_kept(client, stack):
    link_id = body(send(client, "POST", "/link", {"link": "https://example.com/x"}))["link_id"]
    key = new_key()
    first = send(client, "DELETE", f"/link/{link_id}", None, {"Idempotency-Key": key})
    assert first.status_code == 204
    again = send(client, "DELETE", f"/link/{link_id}", None, {"Idempotency-Key": key})
    assert again.status_code == 204 and again.headers["Idempotent-Replayed"] == "true"
    # A refused write keeps nothing: the same key runs again and is answered afresh.
    name, other = f"idem-{uuid.uuid4().hex[:8]}", new_key()
    assert send(client, "DELETE", f"/movies/{name}", None, {"Idempotency-Key": other}).status_code == 404
    assert send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"}).status_code == 200
    deleted = send(client, "DELETE", f"/movies/{name}", None, {"Idempotency-Key": other})
    assert deleted.status_code == 204 and "Idempotent-Replayed" not in deleted.headers


# --- one key, many requests ------------------------------------------------------------------


def _event(method: str, resource: str, path: str, params: dict[str, str] | None, payload: Any, key: str,
           authorizer: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    event = proxy_event(method, resource, path, params, authorizer)
    event["headers"] = {**event["headers"], "Content-Type": "application/json", "Idempotency-Key": key}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["body"] = json.dumps(payload)
    return event


def _in_parallel(count: int, call: Any) -> list[Any]:
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def worker(i: int) -> None:
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:  # a failure must show in the results, not vanish with its thread
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_ten_parallel_inserts_with_one_key_insert_once(stack, collection):
    service = _service(local_stack.DOCDB_SECRET_ID, pool_size=10)
    key = new_key()
    event = _event("POST", "/docdb/{db}/{collection}", f"/docdb/blog/{collection}",
                   {"db": "blog", "collection": collection}, {"n": 1}, key,
                   {"principalId": "apiuser", "grants": "*/*:rw"})  # fmt: skip
    try:
        results = _in_parallel(10, lambda: views.collection(Request(event), "blog", collection, lambda: service))
    finally:
        service.close()
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409}, results
    assert stack.mongo.blog[collection].count_documents({}) == 1
    (stored,) = stack.mongo.blog[collection].find()
    for response in results:
        if response.status_code == 201:
            assert json.loads(response.body) == {"_id": {"$oid": str(stored["_id"])}, "n": 1}
        else:
            assert response.headers["Retry-After"] == "1"


def test_a_request_still_in_flight_is_409_with_retry_after(client, stack, collection):
    key = new_key()
    with stack.mongo.start_session() as session:  # a first request that has claimed the key, uncommitted
        session.start_transaction()
        records(stack).insert_one({"_id": idempotency.record_id("user:apiuser", key)}, session=session)
        response = send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, keyed(ADMIN, key))
        session.abort_transaction()
    assert response.status_code == 409, response.body
    assert response.headers["Retry-After"] == "1"
    assert body(response)["Code"] == "IdempotencyKeyInUse"
    assert stack.mongo.blog[collection].count_documents({}) == 0
    assert send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, keyed(ADMIN, key)).status_code == 201


# --- the key's contract ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "named"),
    [
        ({"method": "POST", "path": "/docdb/blog/{c}", "payload": {"n": 2}}, "body"),
        ({"method": "POST", "path": "/docdb/blog/{c}?x=1", "payload": {"n": 1}}, "query"),
        ({"method": "POST", "path": "/docdb/blog/{c}_other", "payload": {"n": 1}}, "path"),
        ({"method": "PUT", "path": "/docdb/blog/{c}", "payload": {"n": 1}}, "method"),
    ],
)
def test_same_key_for_a_different_request_is_422_naming_the_difference(client, stack, collection, second, named):
    key = new_key()
    assert send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, keyed(ADMIN, key)).status_code == 201
    response = send(client, second["method"], second["path"].format(c=collection), second["payload"],
                    keyed(ADMIN, key))  # fmt: skip
    assert response.status_code == 422, response.body
    assert body(response)["Code"] == "UnprocessableEntityError"
    assert f"different {named}" in body(response)["Message"]
    assert stack.mongo.blog[collection].count_documents({}) == 1
    assert stack.mongo.blog[f"{collection}_other"].count_documents({}) == 0


def test_keys_of_two_users_never_collide(client, stack, collection):
    key, path = new_key(), f"/docdb/demodb/{collection}"
    mine = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    theirs = send(client, "POST", path, {"n": 1}, keyed(OTHER, key))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers  # not the other user's kept response
    assert body(mine) != body(theirs)
    assert stack.mongo.demodb[collection].count_documents({}) == 2
    replay = send(client, "POST", path, {"n": 1}, keyed(OTHER, key))
    assert body(replay) == body(theirs)


def test_an_expired_key_runs_again_even_before_the_ttl_sweeper(client, stack, collection):
    path, key = f"/docdb/blog/{collection}", new_key()
    assert send(client, "POST", path, {"n": 1}, keyed(ADMIN, key)).status_code == 201
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    records(stack).update_one({"_id": idempotency.record_id("user:apiuser", key)}, {"$set": {"expires_at": past}})
    again = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert stack.mongo.blog[collection].count_documents({}) == 2


def test_an_expired_key_on_a_table_runs_again(client, stack):
    url, key = f"https://example.com/{uuid.uuid4()}", new_key()
    assert send(client, "POST", "/link", {"link": url}, {"Idempotency-Key": key}).status_code == 201
    record_id = idempotency.record_id("route:POST /link", key)
    stack.dynamodb.update_item(
        TableName=local_stack.IDEMPOTENCY_TABLE, Key={"id": {"S": record_id}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "1"}},
    )  # fmt: skip
    again = send(client, "POST", "/link", {"link": url}, {"Idempotency-Key": key})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert len(_links_to(stack, url)) == 2


def test_records_expire_by_a_ttl_index_and_a_dynamodb_ttl(client, stack, collection):
    send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, keyed(ADMIN, new_key()))
    ttl = [i for i in records(stack).index_information().values() if i["key"] == [("created_at", 1)]]
    assert [i["expireAfterSeconds"] for i in ttl] == [24 * 60 * 60]
    record = records(stack).find_one({"_id": idempotency.record_id("user:apiuser", "never-used")})
    assert record is None
    described = stack.dynamodb.describe_time_to_live(TableName=local_stack.IDEMPOTENCY_TABLE)
    assert described["TimeToLiveDescription"]["AttributeName"] == "expires_at"


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "café"])
def test_malformed_key_is_400_and_nothing_is_written(client, stack, collection, key):
    response = send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, keyed(ADMIN, key))
    assert response.status_code == 400, response.body
    assert "Idempotency-Key" in body(response)["Message"]
    assert stack.mongo.blog[collection].count_documents({}) == 0


def test_a_write_without_a_key_keeps_no_record(client, stack, collection):
    before = records(stack).estimated_document_count() if DATABASE in stack.mongo.list_database_names() else 0
    for _ in range(2):
        response = send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, ADMIN)
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert stack.mongo.blog[collection].count_documents({}) == 2
    assert (records(stack).estimated_document_count() if DATABASE in stack.mongo.list_database_names() else 0) == before


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_the_records_database_is_reserved(client, method):
    response = send(client, method, f"/docdb/{DATABASE}/{COLLECTION}", None if method == "GET" else {"n": 1}, ADMIN)
    assert response.status_code == 403, response.body


def test_cors_lets_browsers_send_the_key_and_read_the_replay_header(client):
    # The preflight (API Gateway's OPTIONS mock, chalice local's gateway) answers from each route's CORS config.
    writes = [(path, method, route) for path, methods in app_module.app.routes.items()
              for method, route in methods.items() if method in ("POST", "PUT", "PATCH", "DELETE")]  # fmt: skip
    assert len(writes) >= 4 + 3 * 4
    for path, method, route in writes:
        assert "Idempotency-Key" in route.cors.allow_headers.split(","), f"{method} {path}"
    response = send(client, "POST", "/link", {"link": "https://example.com/cors"})
    assert "Idempotent-Replayed" in response.headers["Access-Control-Expose-Headers"].split(",")


def test_app_getter_builds_the_table_records_from_the_stage(client, fresh_app):
    key = new_key()
    send(client, "PUT", "/movies/getter", {"favorite_movie": "Heat"}, {"Idempotency-Key": key})
    assert isinstance(app_module.deps.table_records, DynamoRecords)


class _Commands:
    """The commands clients built after registration start, while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.names: list[str] = []

    def started(self, event: Any) -> None:
        if self.on and event.command_name not in ("hello", "isMaster", "saslStart", "saslContinue", "endSessions"):
            self.names.append(event.command_name)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


def test_a_write_without_a_key_sends_what_it_sent_before_and_a_keyed_one_two_more(client, stack, collection, use):
    from pymongo import monitoring

    listener = type("Listener", (_Commands, monitoring.CommandListener), {})()  # pymongo checks the base class
    monitoring.register(listener)  # for clients built from now on; inert once the test ends
    service = _service(local_stack.DOCDB_SECRET_ID)
    use(collections=service)
    path = f"/docdb/blog/{collection}"
    try:
        assert send(client, "POST", path, {"warm": 1}, keyed(ADMIN, new_key())).status_code == 201  # first use
        listener.on = True
        assert send(client, "POST", path, {"n": 1}, ADMIN).status_code == 201
        plain, listener.names = listener.names, []
        assert send(client, "POST", path, {"n": 2}, keyed(ADMIN, new_key())).status_code == 201
        keyed_commands = listener.names
    finally:
        listener.on = False
        service.close()
    assert plain == ["insert"]
    assert keyed_commands == ["insert", "insert", "commitTransaction"]  # the write, its record, the commit
