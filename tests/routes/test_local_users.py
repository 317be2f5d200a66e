"""`tools.users --local` against the running local stack, with no setup, and changes that apply at once."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import pytest

from chalicelib.auth import MAX_HEADER_CHARS, UserDirectory, max_password_bytes, parse_basic
from tests.support import ADMIN, ROOT, basic, get
from tools import local_stack, users

AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "API_USERS_SECRET_ID")  # fmt: skip


def bare_env(**extra: str) -> dict[str, str]:
    """A shell with no AWS setup at all (and no ~/.aws to fall back on)."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES}
    return {
        **env,
        "HOME": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        **extra,
    }


def run_users(*argv: str, env: dict[str, str], password: str | None = None) -> subprocess.CompletedProcess[str]:
    if password is not None:
        env = {**env, "DOCDB_REST_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "tools.users", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture
def newcomer(stack):
    name = f"newcomer-{uuid.uuid4().hex[:8]}"
    yield name
    run_users("--local", "remove", name, env=bare_env(MOTO_PORT=str(stack.moto.port)))


def test_local_needs_no_setup_and_the_change_applies_to_the_next_request(stack, client, fresh_app, newcomer):
    env = bare_env(MOTO_PORT=str(stack.moto.port))
    path = f"/docdb/blog/t_{uuid.uuid4().hex[:12]}"
    assert get(client, path, headers=ADMIN).status_code == 200  # the users secret is now read and cached
    header = basic(newcomer, "newcomer-pass-1")
    assert get(client, path, headers=header).status_code == 401

    added = run_users("--local", "add", newcomer, "--grant", "blog/*:r", env=env, password="newcomer-pass-1")
    assert added.returncode == 0, added.stderr
    assert "applies to the next request" in added.stderr
    assert get(client, path, headers=header).status_code == 200

    assert run_users("--local", "revoke", newcomer, "blog/*:r", env=env).returncode == 0
    assert get(client, path, headers=header).status_code == 403

    assert run_users("--local", "passwd", newcomer, env=env, password="newcomer-pass-2").returncode == 0
    assert get(client, path, headers=header).status_code == 401

    assert run_users("--local", "remove", newcomer, env=env).returncode == 0
    assert get(client, path, headers=basic(newcomer, "newcomer-pass-2")).status_code == 401
    assert get(client, path, headers=ADMIN).status_code == 200


def test_without_local_or_setup_it_says_what_to_do_in_one_line():
    result = run_users("--secret-id", "anything", "list", env=bare_env())
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "--local" in result.stderr


def test_local_with_no_stack_running_says_so_in_one_line():
    result = run_users("--local", "list", env=bare_env(MOTO_PORT=str(local_stack.free_port())))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "nothing answers" in result.stderr and "make run" in result.stderr


def _secret_after(monkeypatch, capsys, stack, secret_id, name, password):
    monkeypatch.setenv("DOCDB_REST_PASSWORD", password)
    users.main(["--secret-id", secret_id, "add", name, "--grant", "blog/*:r"])
    capsys.readouterr()
    return json.loads(stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"])


@pytest.mark.parametrize("char", ["p", "é"])
def test_the_longest_password_accepted_can_log_in(stack, monkeypatch, capsys, char):
    secret_id = f"test/users-{uuid.uuid4().hex[:8]}"
    limit = max_password_bytes("longpass")
    password = char * (limit // len(char.encode()))
    value = _secret_after(monkeypatch, capsys, stack, secret_id, "longpass", password)
    header = "Basic " + base64.b64encode(f"longpass:{password}".encode()).decode()
    assert len(header) <= MAX_HEADER_CHARS and parse_basic(header) is not None
    assert UserDirectory(lambda: value).authenticate(header) == ("longpass", "blog/*:r")


@pytest.mark.parametrize("char", ["p", "é"])
def test_a_password_too_long_to_log_in_is_refused_with_the_limit(stack, monkeypatch, capsys, char):
    secret_id = f"test/users-{uuid.uuid4().hex[:8]}"
    limit = max_password_bytes("longpass")
    password = char * (limit // len(char.encode()) + 1)
    header = "Basic " + base64.b64encode(f"longpass:{password}".encode()).decode()
    assert parse_basic(header) is None  # the authorizer could never accept it
    with pytest.raises(SystemExit) as refused:
        _secret_after(monkeypatch, capsys, stack, secret_id, "longpass", password)
    assert f"at most {limit} bytes" in str(refused.value)
    with pytest.raises(stack.secrets.exceptions.ResourceNotFoundException):
        stack.secrets.get_secret_value(SecretId=secret_id)


def test_a_reread_that_changed_nothing_for_the_user_costs_no_scrypt_run(monkeypatch):
    """With the users secret re-read on every request (local stage), warm requests still skip scrypt."""
    import chalicelib.auth as auth

    stored = {"u": {"password": auth.hash_password("pass-word-1"), "grants": ["a/b:r"]}}
    directory = UserDirectory(lambda: json.loads(json.dumps({"users": stored})), 60)  # a new object per read
    runs: list[int] = []
    real = auth._scrypt
    monkeypatch.setattr(auth, "_scrypt", lambda *args: runs.append(1) or real(*args))
    header = "Basic " + base64.b64encode(b"u:pass-word-1").decode()
    assert directory.authenticate(header) == ("u", "a/b:r")
    assert directory.authenticate(header) == ("u", "a/b:r")
    assert len(runs) == 1
    stored["u"]["grants"] = ["a/b:rw"]  # a changed entry is checked again
    assert directory.authenticate(header) == ("u", "a/b:rw")
    assert len(runs) == 2


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_short_users_ttl_rereads_each_time_and_falls_back_within_the_loaders_ttl(stack):
    from chalicelib.secrets import SecretError, SecretsLoader

    secret_id = f"test/ttl-{uuid.uuid4().hex[:8]}"
    stack.secrets.create_secret(Name=secret_id, SecretString=json.dumps({"v": 1}))
    clock = _Clock()
    loader = SecretsLoader(lambda: stack.secrets, ttl_seconds=300, clock=clock)
    assert loader.get_json(secret_id, 0) == {"v": 1}
    stack.secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"v": 2}))
    assert loader.get_json(secret_id) == {"v": 1}  # the loader's own TTL still caches
    assert loader.get_json(secret_id, 0) == {"v": 2}  # ttl 0: read again at once
    stack.secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    clock.now = 299.0
    assert loader.get_json(secret_id, 0) == {"v": 2}  # a failed re-read keeps a copy within 300 s
    clock.now = 301.0
    with pytest.raises(SecretError):
        loader.get_json(secret_id, 0)
