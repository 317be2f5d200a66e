"""tools/users.py against moto's Secrets Manager, checked by the authorizer's own code."""

from __future__ import annotations

import base64
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
