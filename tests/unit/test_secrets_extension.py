"""Secrets read through the Parameters and Secrets Lambda Extension (its local stand-in, on moto)."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.secrets import (
    EXTENSION_PORT_VARIABLE,
    ExtensionClient,
    SecretError,
    SecretsLoader,
    extension_port,
    secrets_client,
)
from tools import secrets_extension

TOKEN = "session-token-of-this-container"
AUTH = {"X-Aws-Parameters-Secrets-Token": TOKEN}


@pytest.fixture(scope="module")
def extension(stack: Any) -> Iterator[secrets_extension.SecretsExtension]:
    with secrets_extension.running(stack.moto.endpoint, TOKEN) as server:
        yield server


@pytest.fixture
def in_container(extension: secrets_extension.SecretsExtension, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment Lambda gives a function whose stage has the extension's layer."""
    monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(extension.port))
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


def new_secret(stack: Any, value: Any) -> str:
    name = f"ext/{uuid.uuid4().hex[:10]}"
    stack.secrets.create_secret(Name=name, SecretString=value if isinstance(value, str) else json.dumps(value))
    return name


def raw_get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# --- the stand-in speaks the extension's protocol ---------------------------------


def test_stand_in_serves_get_secret_value_json_to_the_session_token(stack: Any, extension: Any) -> None:
    name = new_secret(stack, {"a": 1})
    status, body = raw_get(extension.port, f"/secretsmanager/get?secretId={name}", AUTH)
    assert status == 200
    answer = json.loads(body)
    assert answer["Name"] == name and json.loads(answer["SecretString"]) == {"a": 1}
    assert answer["ARN"].startswith("arn:aws:secretsmanager:") and "AWSCURRENT" in answer["VersionStages"]


@pytest.mark.parametrize(
    ("path", "headers", "method", "status"),
    [
        ("/secretsmanager/get?secretId=x", {}, "GET", 403),
        ("/secretsmanager/get?secretId=x", {"X-Aws-Parameters-Secrets-Token": "someone-else"}, "GET", 403),
        ("/secretsmanager/get?secretId=x", {"X-Aws-Parameters-Secrets-Token": TOKEN, "X-Forwarded-For": "1.2.3.4"},
         "GET", 400),
        ("/secretsmanager/get", {"X-Aws-Parameters-Secrets-Token": TOKEN}, "GET", 400),
        ("/secretsmanager/get?secretId=x&bogus=1", {"X-Aws-Parameters-Secrets-Token": TOKEN}, "GET", 400),
        ("/elsewhere", {"X-Aws-Parameters-Secrets-Token": TOKEN}, "GET", 404),
        ("/secretsmanager/get?secretId=x", {"X-Aws-Parameters-Secrets-Token": TOKEN}, "POST", 405),
    ],
)  # fmt: skip
def test_stand_in_refuses_what_the_extension_refuses(
    extension: Any, path: str, headers: dict[str, str], method: str, status: int
) -> None:
    assert raw_get(extension.port, path, headers, method)[0] == status


def test_stand_in_passes_secrets_manager_refusals_through(extension: Any) -> None:
    status, body = raw_get(
        extension.port, "/secretsmanager/get?secretId=ext/never-created", {"X-Aws-Parameters-Secrets-Token": TOKEN}
    )
    # Secrets Manager answers 400; moto answers 404.  Either passes through as it came.
    assert status in (400, 404) and json.loads(body)["__type"] == "ResourceNotFoundException"


# --- the loader reads through it ---------------------------------------------------


@pytest.mark.usefixtures("in_container")
def test_loader_reads_through_the_extension_when_the_container_has_it(stack: Any, extension: Any) -> None:
    name = new_secret(stack, {"user": "u", "password": "p"})
    client = secrets_client()
    assert isinstance(client, ExtensionClient) and client.port == extension.port
    before = extension.requests
    assert SecretsLoader(secrets_client).get_json(name) == {"user": "u", "password": "p"}
    assert extension.requests == before + 1


@pytest.mark.usefixtures("in_container")
def test_a_reread_after_invalidate_sees_a_rotated_secret(stack: Any) -> None:
    name = new_secret(stack, {"v": 1})
    loader = SecretsLoader(secrets_client)
    assert loader.get_json(name) == {"v": 1}
    stack.secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"v": 2}))
    loader.invalidate(name)
    assert loader.get_json(name) == {"v": 2}


@pytest.mark.usefixtures("in_container")
def test_a_missing_secret_is_a_secret_error_naming_the_code(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SecretError, match=r"cannot be read \(ResourceNotFoundException\)"):
        SecretsLoader(secrets_client).get_json("ext/never-created")


@pytest.mark.usefixtures("in_container")
@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_a_secret_that_is_not_an_object_is_a_secret_error(stack: Any, text: str) -> None:
    with pytest.raises(SecretError, match="not a JSON object"):
        SecretsLoader(secrets_client).get_json(new_secret(stack, text))


@pytest.mark.usefixtures("in_container")
def test_a_refused_token_is_a_secret_error_and_never_logged(
    stack: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "stale-token-value")
    with pytest.raises(SecretError, match="refused"):
        SecretsLoader(secrets_client).get_json(new_secret(stack, {"a": 1}))
    assert "stale-token-value" not in caplog.text and TOKEN not in caplog.text


def test_secrets_manager_unreachable_behind_the_extension_is_a_503(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    with secrets_extension.running(dead, TOKEN) as server:
        monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(server.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
        with pytest.raises(SecretError, match="unreachable") as caught:
            SecretsLoader(secrets_client).get_json("ext/anything")
    assert caught.value.STATUS_CODE == 503


# --- and falls back to botocore --------------------------------------------------------


def test_without_the_extension_the_loader_uses_botocore(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTENSION_PORT_VARIABLE, raising=False)
    assert extension_port() is None  # no layer binary on this machine either
    client = secrets_client()
    assert not isinstance(client, ExtensionClient) and hasattr(client, "get_secret_value")
    assert SecretsLoader(secrets_client).get_json(new_secret(stack, {"b": 2})) == {"b": 2}


def test_an_extension_that_stopped_listening_falls_back_to_botocore(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(closed_port))
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    loader = SecretsLoader(secrets_client)
    assert loader.get_json(new_secret(stack, {"c": 3})) == {"c": 3}
    assert not isinstance(loader._client, ExtensionClient)


def test_extension_port_comes_from_the_layer_binary_or_the_variable(tmp_path: Path) -> None:
    binary = tmp_path / "AWSParametersAndSecretsLambdaExtension"
    assert extension_port({}, str(binary)) is None
    binary.write_text("")
    assert extension_port({}, str(binary)) == 2773
    assert extension_port({EXTENSION_PORT_VARIABLE: "3001"}, str(tmp_path / "absent")) == 3001
    assert extension_port({EXTENSION_PORT_VARIABLE: "not-a-port"}, str(binary)) is None
    assert extension_port({EXTENSION_PORT_VARIABLE: "70000"}, str(binary)) is None
