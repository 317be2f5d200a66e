"""Reliability: the real local backends broken on purpose (issue 7).

Complements test_docdb_faults.py.  A small TCP proxy on loopback stands
between the app and a backend so a test can refuse connections, cut them, or
lose one reply; a tiny HTTP stub in front of moto answers DynamoDB throttling
errors so botocore's own retries run.  Every backend a test stops is started
again in a ``finally``: the rest of the session shares it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import app as app_module
from chalicelib import aws
from chalicelib.docdb.client import DocdbConnection, build_client
from chalicelib.docdb.service import CollectionService
from chalicelib.secrets import SecretsLoader
from chalicelib.tables.links import LinkStore
from chalicelib.tables.movies import MovieStore
from chalicelib.tables.table import StringItemTable
from tests.support import ADMIN, Proxy, ThrottlingDynamo, body, dynamodb_through, get, send
from tools import local_stack


@pytest.fixture
def throttling_dynamo(stack, use, monkeypatch) -> Iterator[ThrottlingDynamo]:
    """The app's link and movie stores built by the app's own client factory, aimed at the stub."""
    with dynamodb_through(ThrottlingDynamo(stack.moto.port), monkeypatch) as stub:
        use(links=LinkStore(aws.client("dynamodb"), local_stack.LINKS_TABLE),
            movies=MovieStore(aws.client("dynamodb"), local_stack.MOVIES_TABLE))
        yield stub


# --- helpers -----------------------------------------------------------------


def _assert_json_503(response: Any) -> dict[str, Any]:
    """A 503 the contract allows: Chalice's error JSON, Retry-After, no traceback."""
    assert response.status_code == 503, response.body
    assert int(response.headers["Retry-After"]) > 0
    text = response.body.decode()
    assert "Traceback" not in text and 'File "' not in text
    payload = json.loads(text)
    assert set(payload) == {"Code", "Message"}
    return payload


def _set_db_password(stack, password: str, secret_id: str, secret: dict[str, Any]) -> None:
    """Rotate as Secrets Manager's rotation does: the server first, then the secret."""
    stack.mongo.admin.command("updateUser", stack.secantus.user, pwd=password)
    local_stack.put_secret(stack.secrets, secret_id, {**secret, "password": password})


def _service(secret_id: str, builds: list[int] | None = None) -> CollectionService:
    """A collection service as app.py builds it, on its own secret and secrets cache."""

    def factory(secret: dict[str, Any], ca_file: str, pool_size: int) -> Any:
        if builds is not None:
            builds.append(1)
        return build_client(secret, ca_file, pool_size)

    secrets = SecretsLoader(lambda: aws.client("secretsmanager"), ttl_seconds=300)
    connection = DocdbConnection(secrets, secret_id, os.environ["DOCDB_CA_FILE"], 2, factory=factory)
    return CollectionService(connection)


def _oid(message: str) -> str:
    match = re.search(r'\{"\$oid":\s*"([0-9a-f]{24})"\}', message)
    assert match, f"no _id in {message!r}"
    return match.group(1)


# --- the database stops, or freezes ------------------------------------------


def _wait_until_stopped(pid: int) -> None:
    """Until every thread of ``pid`` is stopped: SIGSTOP takes effect asynchronously."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/stat") as stat:
                states.append(stat.read().rpartition(")")[2].split()[0])
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


def test_write_while_database_is_down_is_503_then_requests_recover_in_the_same_app(client, stack, collection):
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"n": 1}, ADMIN).status_code == 201
    service = app_module.get_collection_service()
    stack.secantus.stop()
    try:
        started = time.monotonic()
        payload = _assert_json_503(send(client, "POST", path, {"n": 2}, ADMIN))
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"answered after {elapsed:.1f} s"  # the contract's bound
        # Sent on a pooled connection to a server that went away, the insert's outcome is unknown to the
        # driver (WriteOutcomeUnknown); with no connection left to send on, the database is unreachable.
        assert payload["Code"] in ("WriteOutcomeUnknown", "ServiceUnavailableError")
    finally:
        stack.secantus.start()
    # The same container, with no restart, serves every kind of request again.
    assert send(client, "POST", path, {"n": 3}, ADMIN).status_code == 201
    assert [d["n"] for d in body(get(client, path, {"sort": '{"n": 1}'}, ADMIN))] == [1, 3]
    patched = send(client, "PATCH", path, {"filter": {"n": 3}, "update": {"$set": {"m": 1}}}, ADMIN)
    assert body(patched)["modified_count"] == 1
    assert body(send(client, "DELETE", path, {"filter": {"n": 1}}, ADMIN))["deleted_count"] == 1
    assert [d["n"] for d in body(get(client, path, headers=ADMIN))] == [3]
    assert app_module.get_collection_service() is service


def test_frozen_database_is_503_within_ten_seconds_then_recovers(client, stack, collection, fresh_app):
    """A server that accepts connections but never answers (SIGSTOP: a hung host, a black hole).

    A cold container, so the driver's monitor has just checked the server and
    will not notice the freeze for another 10 s + 3 s: only the request's
    own deadline can answer in time.
    """
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"n": 1}, ADMIN).status_code == 201
    pid = stack.secantus.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait_until_stopped(pid)
        started = time.monotonic()
        response = get(client, path, headers=ADMIN)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert elapsed < 10, f"answered after {elapsed:.1f} s"  # the contract's bound
    assert _assert_json_503(response)["Code"] == "ServiceUnavailableError"
    for _ in range(3):
        response = get(client, path, headers=ADMIN)
        assert response.status_code == 200, response.body
        assert [d["n"] for d in body(response)] == [1]


# --- a write whose acknowledgement is lost ------------------------------------


@pytest.fixture
def docdb_proxy(stack, use, monkeypatch) -> Iterator[Proxy]:
    """The app's collection service reaching SecantusDB through a proxy that can lose a reply."""
    tls = ssl.create_default_context(cafile=str(stack.secantus.ca_file))
    proxy = Proxy(stack.secantus.port, upstream_tls=tls).start()
    secret_id = f"test/docdb-lossy-{uuid.uuid4().hex[:8]}"
    secret = {**stack.secantus.secret(), "port": proxy.port, "ssl": False}  # TLS is the proxy's leg
    local_stack.put_secret(stack.secrets, secret_id, secret)
    service = _service(secret_id)
    use(collections=service)
    try:
        yield proxy
    finally:
        proxy.stop()
        service._connection.reset()


def test_database_that_stops_answering_mid_request_is_503_within_ten_seconds(client, collection, docdb_proxy):
    """The server takes the query and never replies, while it still answers the driver's monitor."""
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"n": 1}, ADMIN).status_code == 201
    docdb_proxy.stall("find")
    try:
        started = time.monotonic()
        response = get(client, path, headers=ADMIN)
        elapsed = time.monotonic() - started
    finally:
        docdb_proxy.release()
    assert docdb_proxy.stalled == ["find"]
    assert elapsed < 10, f"answered after {elapsed:.1f} s"  # the contract's bound
    payload = _assert_json_503(response)
    assert payload["Code"] == "ServiceUnavailableError"
    # It ran out of time; the database was reachable all along.
    assert "did not answer within" in payload["Message"] and "unreachable" not in payload["Message"]
    for _ in range(2):
        response = get(client, path, headers=ADMIN)
        assert response.status_code == 200, response.body
        assert [d["n"] for d in body(response)] == [1]


def test_insert_whose_reply_is_lost_is_not_reported_as_success(client, stack, collection, docdb_proxy):
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"n": 1}, ADMIN).status_code == 201
    docdb_proxy.lose_reply_to("insert")
    payload = _assert_json_503(send(client, "POST", path, {"n": 2}, ADMIN))
    assert docdb_proxy.lost == ["insert"]  # the server did answer; only the reply was lost
    assert "may or may not have been stored" in payload["Message"]
    # The message names the _id, so the caller can find out what happened.
    oid = _oid(payload["Message"])
    found = get(client, path, {"filter": json.dumps({"_id": {"$oid": oid}})}, ADMIN)
    assert found.status_code == 200
    assert [d["n"] for d in body(found)] == [2]
    assert stack.mongo.blog[collection].count_documents({}) == 2


def test_update_whose_reply_is_lost_is_not_reported_as_success(client, stack, collection, docdb_proxy):
    path = f"/docdb/blog/{collection}"
    assert send(client, "POST", path, {"k": "a", "n": 1}, ADMIN).status_code == 201
    docdb_proxy.lose_reply_to("update")
    update = {"filter": {"k": "a"}, "update": {"$inc": {"n": 1}}}
    payload = _assert_json_503(send(client, "PATCH", path, update, ADMIN))
    assert docdb_proxy.lost == ["update"]
    # The update ran inside a transaction whose commit was never sent: nothing changed, so a retry is safe.
    assert "nothing was changed" in payload["Message"]
    assert [d["n"] for d in body(get(client, path, headers=ADMIN))] == [1]


# --- rotation while requests keep flowing -------------------------------------


def test_password_rotations_while_requests_flow_cost_no_failed_request(client, stack, collection, use, monkeypatch,
                                                                       caplog):
    """Rotate twice under steady traffic; each time the connections drop, as they do in a failover.

    Pooled connections stay authenticated after a rotation, so the stale
    cached password only matters when the driver opens a new connection:
    that request re-reads the secret and tries once more, and succeeds.
    """
    proxy = Proxy(stack.secantus.port).start()  # plain forwarding: TLS passes through
    secret_id = f"test/docdb-rotating-{uuid.uuid4().hex[:8]}"
    secret = {**stack.secantus.secret(), "port": proxy.port}
    local_stack.put_secret(stack.secrets, secret_id, secret)
    builds: list[int] = []
    service = _service(secret_id, builds)
    use(collections=service)
    path = f"/docdb/blog/{collection}"
    stored = 0

    def traffic(requests: int) -> None:
        nonlocal stored
        for _ in range(requests):
            caplog.clear()
            response = send(client, "POST", path, {"n": stored}, ADMIN)
            assert response.status_code == 201, response.body
            stored += 1
            response = get(client, path, {"count": "true", "limit": "1"}, ADMIN)
            assert response.status_code == 200, response.body
            assert response.headers["X-Total-Count"] == str(stored)
            retries = [r for r in caplog.records if "rejected the credentials" in r.getMessage()]
            assert len(retries) <= 1  # at most one failed attempt inside a request

    caplog.set_level(logging.WARNING)
    try:
        traffic(3)
        for rotation in (1, 2):
            _set_db_password(stack, f"rotated-{rotation}-{uuid.uuid4().hex[:6]}", secret_id, secret)
            traffic(2)  # still on the connections opened with the old password
            proxy.sever()
            time.sleep(1.2)  # pymongo checks an idle pooled connection for a close after 1 s
            traffic(3)
        assert len(builds) == 3  # the first client, then one rebuild per rotation
    finally:
        _set_db_password(stack, stack.secantus.password, secret_id, secret)
        proxy.stop()
        service._connection.reset()


# --- Secrets Manager unreachable at a cold start ------------------------------


@pytest.fixture
def secrets_proxy(stack, monkeypatch, fresh_app) -> Iterator[Proxy]:
    """Secrets Manager (moto) reached through a proxy the test can take away."""
    proxy = Proxy(stack.moto.port).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{proxy.port}")
    try:
        yield proxy
    finally:
        proxy.stop()


def test_secrets_manager_down_at_cold_start_is_503_then_heals(client, collection, secrets_proxy):
    path = f"/docdb/blog/{collection}"
    secrets_proxy.stop()
    # A cold authorizer cannot read the users: API Gateway's JSON 503.
    response = get(client, path, headers=ADMIN)
    assert response.status_code == 503
    assert "message" in json.loads(response.body)
    assert int(response.headers["Retry-After"]) > 0
    assert app_module.get_secrets()._cache == {}  # nothing cached from the failed read
    secrets_proxy.start()
    assert get(client, path, headers=ADMIN).status_code == 200

    # A cold API container behind a warm authorizer: the DocumentDB secret is unreadable.
    app_module.deps.collections = None  # a new container: the service is built again
    app_module.get_secrets().invalidate(local_stack.DOCDB_SECRET_ID)
    secrets_proxy.stop()
    payload = _assert_json_503(get(client, path, headers=ADMIN))
    assert "Secrets Manager is unreachable" in payload["Message"]
    assert local_stack.DOCDB_SECRET_ID not in app_module.get_secrets()._cache
    assert app_module.get_collection_service()._connection._client is None
    secrets_proxy.start()
    for _ in range(2):
        response = get(client, path, headers=ADMIN)
        assert response.status_code == 200, response.body


# --- DynamoDB throttling ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "payload", "code"),
    [
        ("POST", "/link", {"link": "https://example.com/throttled"}, "ProvisionedThroughputExceededException"),
        ("GET", "/movies", None, "ThrottlingException"),
        ("PUT", "/movies/throttled", {"favorite_movie": "Heat"}, "ThrottlingException"),
    ],
)
def test_dynamodb_throttling_is_retried_three_times_then_503(client, throttling_dynamo, method, path, payload, code):
    throttling_dynamo.code = code
    throttling_dynamo.throttles = 100
    response = send(client, method, path, payload) if payload is not None else get(client, path)
    result = _assert_json_503(response)
    assert result["Code"] == "ServiceUnavailableError"
    assert len(throttling_dynamo.attempts) == 3  # botocore standard mode: 1 call + 2 retries


def test_dynamodb_throttling_that_passes_within_the_retries_succeeds(client, stack, throttling_dynamo):
    throttling_dynamo.throttles = 2
    response = send(client, "POST", "/link", {"link": "https://example.com/patient"})
    assert response.status_code == 201, response.body
    assert len(throttling_dynamo.attempts) == 3
    link_id = body(response)["link_id"]
    stored = stack.dynamodb.get_item(TableName=local_stack.LINKS_TABLE, Key={"link_id": {"S": link_id}})
    assert stored["Item"]["link"]["S"] == "https://example.com/patient"


# --- bad secrets and configuration: logged, a JSON 503, no traceback ----------


def _missing_table(use, attr: str, store: type[StringItemTable]) -> None:
    use(**{attr: store(aws.client("dynamodb"), "no-such-table")})


@pytest.mark.parametrize(
    ("case", "request_path", "code", "logged"),
    [
        ("malformed secret", "/docdb/blog/{c}", "ConfigurationError", "DocumentDB secret lacks host"),
        ("secret not JSON", "/docdb/blog/{c}", "ConfigurationError", "is not a JSON object"),
        ("missing CA file", "/docdb/blog/{c}", "ConfigurationError", "CA bundle '/nonexistent/ca.pem' was not found"),
        ("missing links table", "/link/" + str(uuid.UUID(int=1, version=4)), "ConfigurationError",
         "DynamoDB (no-such-table) is misconfigured: ResourceNotFoundException"),
        ("missing movies table", "/movies", "ConfigurationError",
         "DynamoDB (no-such-table) is misconfigured: ResourceNotFoundException"),
    ],
)
def test_configuration_errors_are_logged_and_answered_503_without_traceback(
    client, stack, collection, fresh_app, use, monkeypatch, caplog, case, request_path, code, logged
):
    if case == "malformed secret":
        local_stack.put_secret(stack.secrets, local_stack.DOCDB_SECRET_ID, {"host": "127.0.0.1", "ssl": True})
    elif case == "secret not JSON":
        stack.secrets.put_secret_value(SecretId=local_stack.DOCDB_SECRET_ID, SecretString="{not json")
    elif case == "missing CA file":
        monkeypatch.setenv("DOCDB_CA_FILE", "/nonexistent/ca.pem")
    elif case == "missing links table":
        _missing_table(use, "links", LinkStore)
    else:
        _missing_table(use, "movies", MovieStore)
    caplog.set_level(logging.WARNING)
    try:
        response = get(client, request_path.format(c=collection), headers=ADMIN)
    finally:
        stack.seed()
    payload = _assert_json_503(response)
    assert payload["Code"] == code
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(logged in message for message in errors), errors
    assert not any(r.exc_info for r in caplog.records)  # logged as a line, not a stack dump
