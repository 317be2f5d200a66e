"""tools/users.py against moto's Secrets Manager, checked by the authorizer's own code."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest

from chalicelib.auth import UserDirectory
from tools import users


@pytest.fixture
def secret_id(stack):
    return f"test/users-{uuid.uuid4().hex[:8]}"


def run(monkeypatch, capsys, secret_id, *argv, password=None):
    if password is not None:
        monkeypatch.setenv("DOCDB_REST_PASSWORD", password)
    users.main(["--secret-id", secret_id, *argv])
    return capsys.readouterr().out


def check(stack, secret_id, user, password):
    value = json.loads(stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return UserDirectory(lambda: value).authenticate(header)


def test_add_creates_the_secret_and_the_user_can_log_in(stack, monkeypatch, capsys, secret_id):
    run(monkeypatch, capsys, secret_id, "add", "alice", "--grant", "blog/*:rw", password="alice-pass-1")
    assert check(stack, secret_id, "alice", "alice-pass-1") == ("alice", "blog/*:rw")
    assert check(stack, secret_id, "alice", "wrong-pass") is None
    stored = stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    assert "alice-pass-1" not in stored and "scrypt$" in stored


def test_passwd_grant_revoke_remove_and_list(stack, monkeypatch, capsys, secret_id):
    run(monkeypatch, capsys, secret_id, "add", "bob", password="bob-pass-01")
    run(monkeypatch, capsys, secret_id, "grant", "bob", "demodb/*:r")
    assert check(stack, secret_id, "bob", "bob-pass-01") == ("bob", "demodb/*:r")
    run(monkeypatch, capsys, secret_id, "passwd", "bob", password="bob-pass-02")
    assert check(stack, secret_id, "bob", "bob-pass-01") is None
    assert check(stack, secret_id, "bob", "bob-pass-02") == ("bob", "demodb/*:r")
    run(monkeypatch, capsys, secret_id, "revoke", "bob", "demodb/*:r")
    assert check(stack, secret_id, "bob", "bob-pass-02") == ("bob", "")
    assert "bob" in run(monkeypatch, capsys, secret_id, "list")
    run(monkeypatch, capsys, secret_id, "remove", "bob")
    assert check(stack, secret_id, "bob", "bob-pass-02") is None


@pytest.mark.parametrize(
    ("argv", "password"),
    [
        (["add", "carol"], "short"),
        (["add", "carol"], "has\ncontrol-char"),
        (["add", "ca:rol"], "carol-pass-1"),
        (["passwd", "nobody"], "carol-pass-1"),
    ],
)
def test_refused_changes_write_nothing(stack, monkeypatch, capsys, secret_id, argv, password):
    with pytest.raises(SystemExit):
        run(monkeypatch, capsys, secret_id, *argv, password=password)
    with pytest.raises(stack.secrets.exceptions.ResourceNotFoundException):
        stack.secrets.get_secret_value(SecretId=secret_id)


def test_malformed_grant_is_refused(stack, monkeypatch, capsys, secret_id):
    with pytest.raises(SystemExit):
        run(monkeypatch, capsys, secret_id, "add", "dave", "--grant", "blog:rw", password="dave-pass-1")


# --- API keys (the Data API's credentials) -------------------------------------------


def test_create_list_revoke_key(stack, monkeypatch, capsys, secret_id):
    run(monkeypatch, capsys, secret_id, "add", "erin", "--grant", "blog/*:r", password="erin-pass-01")
    out = run(monkeypatch, capsys, secret_id, "create-key", "erin", "--label", "ci")
    key = out.strip().splitlines()[-1]
    key_id = key.split(".")[0]
    stored = stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    assert key.partition(".")[2] not in stored  # only the hash is kept
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    value = json.loads(stored)
    assert UserDirectory(lambda: value).authenticate_key(key) == ("erin", "blog/*:r")
    assert UserDirectory(lambda: value).authenticate_key(key_id + ".wrong") is None

    listing = run(monkeypatch, capsys, secret_id, "list-keys")
    assert key_id in listing and "erin" in listing and "ci" in listing
    assert key.partition(".")[2] not in listing and hashlib.sha256(key.encode()).hexdigest() not in listing
    assert run(monkeypatch, capsys, secret_id, "list-keys", "nobody").strip() == ""

    run(monkeypatch, capsys, secret_id, "revoke-key", key_id)
    value = json.loads(stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    assert UserDirectory(lambda: value).authenticate_key(key) is None
    assert key_id not in run(monkeypatch, capsys, secret_id, "list-keys")


@pytest.mark.parametrize("argv", [["create-key", "nobody"], ["revoke-key", "0123456789ab"]])
def test_key_commands_on_unknown_names_write_nothing(stack, monkeypatch, capsys, secret_id, argv):
    with pytest.raises(SystemExit):
        run(monkeypatch, capsys, secret_id, *argv)
    with pytest.raises(stack.secrets.exceptions.ResourceNotFoundException):
        stack.secrets.get_secret_value(SecretId=secret_id)


def test_malformed_key_records_are_skipped_not_fatal():
    good_key = "0123456789ab.secret"
    secret = {"users": {
        "a": {"grants": ["x/y:r"], "api_keys": [{"id": "0123456789ab",
                                                  "sha256": hashlib.sha256(good_key.encode()).hexdigest()}]},
        "b": {"grants": [], "api_keys": 5},
        "c": {"grants": [], "api_keys": [{"id": "ffffffffffff", "sha256": "not hex"}, "junk", {"id": 1}]},
        "d": "not a user",
    }}  # fmt: skip
    directory = UserDirectory(lambda: secret)
    assert directory.authenticate_key(good_key) == ("a", "x/y:r")
    assert directory.authenticate_key("ffffffffffff.anything") is None
    assert directory.authenticate_key(None) is None
