"""Rotation, an unreachable database, and bad configuration, on the real servers."""

from __future__ import annotations

import json
import time

import pytest

import app as app_module
from chalicelib.docdb.client import MAX_TIME_MS_EXPIRED
from tests.support import ADMIN, body, commands_fail, get, send
from tools import local_stack


def _set_db_password(stack, password):
    stack.mongo.admin.command("updateUser", stack.secantus.user, pwd=password)
    local_stack.put_secret(
        stack.secrets, local_stack.DOCDB_SECRET_ID, {**stack.secantus.secret(), "password": password}
    )


def test_rotated_password_heals_within_the_request(client, stack, collection):
    assert send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, ADMIN).status_code == 201
    connection = app_module.get_collection_service()._connection
    try:
        _set_db_password(stack, "rotated-password-1")
        # Pooled sockets stay authenticated after a password change, so drop
        # the client but keep the cached (now stale) secret: the next
        # connection authenticates with the old password, as a container
        # whose pool was reaped would.
        old, connection._client = connection._client, None
        old.close()
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
        assert response.status_code == 200, response.body
        assert [d["n"] for d in body(response)] == [1]
        assert connection._secrets.get_json(local_stack.DOCDB_SECRET_ID)["password"] == "rotated-password-1"
    finally:
        _set_db_password(stack, stack.secantus.password)
        connection.reset()


def test_wrong_password_in_secret_is_503_not_a_loop(client, stack, collection, fresh_app):
    local_stack.put_secret(stack.secrets, local_stack.DOCDB_SECRET_ID, {**stack.secantus.secret(), "password": "nope"})
    try:
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
        assert response.status_code == 503
        assert body(response)["Code"] == "ConfigurationError"
        assert "Retry-After" in response.headers
        assert "nope" not in response.body.decode()
    finally:
        stack.seed()


@pytest.mark.parametrize(
    "secret",
    [{"host": "127.0.0.1"}, {"username": "u", "password": "p"}, {"host": "", "username": "u", "password": "p"}],
)
def test_malformed_docdb_secret_is_503(client, stack, collection, fresh_app, secret):
    local_stack.put_secret(stack.secrets, local_stack.DOCDB_SECRET_ID, secret)
    try:
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
        assert response.status_code == 503
        assert body(response)["Code"] == "ConfigurationError"
    finally:
        stack.seed()


def test_secret_that_is_not_json_is_503(client, stack, collection, fresh_app):
    stack.secrets.put_secret_value(SecretId=local_stack.DOCDB_SECRET_ID, SecretString="not json")
    try:
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
        assert response.status_code == 503
        assert "not a JSON object" in body(response)["Message"]
    finally:
        stack.seed()


def test_missing_ca_file_with_tls_is_a_clear_503(client, collection, fresh_app, monkeypatch):
    monkeypatch.setenv("DOCDB_CA_FILE", "/nonexistent/global-bundle.pem")
    response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
    assert response.status_code == 503
    assert "DOCDB_CA_FILE" in body(response)["Message"]
    assert "/nonexistent" not in body(response)["Message"]  # paths go to the log only


def test_database_stopped_is_503_with_retry_after_then_recovers(client, stack, collection):
    assert send(client, "POST", f"/docdb/blog/{collection}", {"n": 1}, ADMIN).status_code == 201
    stack.secantus.stop()
    try:
        started = time.monotonic()
        response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert body(response)["Code"] == "ServiceUnavailableError"
        assert int(response.headers["Retry-After"]) > 0
        assert elapsed < 10, f"answered after {elapsed:.1f} s"  # the contract's bound, not a benchmark
    finally:
        stack.secantus.start()
    response = get(client, f"/docdb/blog/{collection}", headers=ADMIN)
    assert response.status_code == 200
    assert [d["n"] for d in body(response)] == [1]


def test_users_secret_unreadable_is_503_from_the_authorizer(client, stack, fresh_app, use, monkeypatch):
    monkeypatch.setenv("API_USERS_SECRET_ID", "no/such/secret")
    # The stage config sets API_USERS_SECRET_ID, so point the app's settings
    # at the missing secret directly.
    settings = app_module.get_settings()
    use(settings=type(settings)(**{**settings.__dict__, "api_users_secret_id": "x/y"}))
    response = get(client, "/docdb/blog/test", headers=ADMIN)
    assert response.status_code == 503
    assert json.loads(response.body) == {"message": "credentials cannot be checked right now"}


def test_write_stopped_at_the_servers_time_limit_is_503_not_success(client, stack, collection):
    insert = send(client, "POST", f"/docdb/blog/{collection}", [{"n": i} for i in range(3)], ADMIN)
    assert insert.status_code == 201
    with commands_fail(stack.mongo, ["update"], MAX_TIME_MS_EXPIRED):
        response = send(
            client, "PATCH", f"/docdb/blog/{collection}", {"filter": {"n": {"$gte": 0}}, "update": {"$inc": {"n": 1}}},
            ADMIN,
        )  # fmt: skip
    assert response.status_code == 503
    # The update runs in a transaction that never committed: nothing changed, and the answer says so.
    assert "nothing was changed" in body(response)["Message"]
    assert sorted(d["n"] for d in stack.mongo.blog[collection].find()) == [0, 1, 2]
