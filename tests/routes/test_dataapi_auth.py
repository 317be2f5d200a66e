"""Who may call the Data API routes: API keys (apiKey, api-key) and Basic, checked by the authorizer's code."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid

import pytest

from chalicelib.auth import UserDirectory
from tests.support import ADMIN, basic, create_key, forget_secrets, revoke_key
from tests.support import data_api_action as action
from tests.support import data_api_namespace as namespace
from tools import local_stack
from tools import users as users_tool

NO_USER = "invalid session: error finding user for endpoint"


def answer(response):
    return response.status_code, json.loads(response.body)


def find(client, headers, collection="keys_probe"):
    return action(client, "find", namespace(collection), headers=headers)


@pytest.fixture(scope="module")
def key(stack):
    return create_key(stack, "apiuser", label="tests")


@pytest.mark.parametrize("header", ["apiKey", "api-key", "APIKEY", "Api-Key"])
def test_a_key_in_either_header_acts_as_its_user(client, key, header):
    assert answer(find(client, {header: key})) == (200, {"documents": []})


def test_basic_credentials_work_too(client):
    assert answer(find(client, ADMIN)) == (200, {"documents": []})


@pytest.mark.parametrize(
    "headers",
    [
        {"apiKey": "0123456789ab.not-the-secret"},
        {"apiKey": "not-a-key"},
        {"api-key": "x" * 5000},
        {"apiKey": "é" * 20},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"},
        {"Authorization": "Basic bm90OmFwYXNzd29yZA=="},
        {"Authorization": "Basic %%%"},
        {"Authorization": "Digest username=x"},
        {"email": "someone@example.com", "password": "Pa55w0rd!"},
        {"jwtTokenString": "eyJhbGciOiJIUzI1NiJ9.e30.x"},
    ],
)
def test_credentials_that_match_no_user_are_401_invalid_session(client, headers):
    assert answer(find(client, headers)) == (401, {"error": NO_USER, "error_code": "InvalidSession"})


def test_a_wrong_secret_for_a_real_key_id_is_401(client, key):
    key_id, _, secret = key.partition(".")
    wrong = f"{key_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    assert answer(find(client, {"apiKey": wrong}))[0] == 401
    assert answer(find(client, {"apiKey": key + "x"}))[0] == 401


def test_no_credentials_is_the_documented_400(client):
    assert answer(find(client, {})) == (
        400, {"error": "no authentication methods were specified", "error_code": "InvalidParameter"})  # fmt: skip


def test_an_empty_key_header_is_400_missing_parameter(client):
    status, body = answer(find(client, {"apiKey": " "}))
    assert (status, body["error_code"]) == (400, "MissingParameter")


def test_authorization_is_checked_before_the_key_headers(client, key):
    """As Atlas did: a wrong Authorization fails even beside a good key."""
    assert answer(find(client, {**basic("apiuser", "wrong"), "apiKey": key}))[0] == 401


def test_a_revoked_key_stops_working_and_the_users_other_keys_do_not(client, stack):
    first, second = create_key(stack, "demowriter"), create_key(stack, "demowriter")
    body = {"dataSource": "x", "database": "demodb", "collection": "democollection", "filter": {}}
    assert action(client, "find", body, first).status_code == 200
    revoke_key(stack, first)
    assert answer(action(client, "find", body, first)) == (401, {"error": NO_USER, "error_code": "InvalidSession"})
    assert action(client, "find", body, second).status_code == 200


def test_a_key_carries_its_users_grants_as_they_change(client, stack):
    name = f"u{uuid.uuid4().hex[:8]}"
    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    value["users"][name] = {"password": "scrypt$unused", "grants": ["shared/*:r"]}
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    key = create_key(stack, name)
    read = {"dataSource": "x", "database": "shared", "collection": "things", "filter": {}}
    write = {**read, "document": {"a": 1}}
    del write["filter"]
    assert action(client, "find", read, key).status_code == 200
    assert action(client, "insertOne", write, key).status_code == 403
    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    value["users"][name]["grants"] = ["shared/*:rw"]
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    forget_secrets()
    assert action(client, "insertOne", write, key).status_code == 200
    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    del value["users"][name]
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    forget_secrets()
    assert action(client, "find", read, key).status_code == 401


def test_no_key_or_password_reaches_a_response_or_a_log(client, key, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = key[:-2] + "zz"
    responses = [find(client, {"apiKey": wrong}), find(client, {"apiKey": key}),
                 find(client, basic("apiuser", "not-the-password"))]  # fmt: skip
    secret_part = key.partition(".")[2]
    for response in responses:
        assert secret_part not in response.body.decode() and wrong.partition(".")[2] not in response.body.decode()
    text = caplog.text
    assert secret_part not in text and wrong.partition(".")[2] not in text and "not-the-password" not in text


# --- the user command's key subcommands -------------------------------------------------------


@pytest.fixture
def secret_id(stack):
    return f"test/users-{uuid.uuid4().hex[:8]}"


def run(monkeypatch, capsys, secret_id, *argv, password=None):
    if password is not None:
        monkeypatch.setenv("DOCDB_REST_PASSWORD", password)
    users_tool.main(["--secret-id", secret_id, *argv])
    return capsys.readouterr().out


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
