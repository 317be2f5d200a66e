"""The Secrets Manager loader against moto's server."""

from __future__ import annotations

import json

import pytest
from botocore.config import Config

from chalicelib.errors import ConfigurationError
from chalicelib.secrets import SecretError, SecretsLoader


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loader_parts(stack):
    calls: list[int] = []

    def factory():
        calls.append(1)
        return stack.secrets

    clock = Clock()
    return SecretsLoader(factory, ttl_seconds=60, clock=clock), clock, calls


def test_reads_json_secret(stack, loader_parts):
    loader, _, _ = loader_parts
    stack.secrets.create_secret(Name="t/read", SecretString=json.dumps({"a": 1}))
    assert loader.get_json("t/read") == {"a": 1}


def test_caches_for_ttl_then_rereads(stack, loader_parts):
    loader, clock, _ = loader_parts
    stack.secrets.create_secret(Name="t/ttl", SecretString=json.dumps({"v": 1}))
    assert loader.get_json("t/ttl") == {"v": 1}
    stack.secrets.put_secret_value(SecretId="t/ttl", SecretString=json.dumps({"v": 2}))
    clock.now = 59
    assert loader.get_json("t/ttl") == {"v": 1}
    clock.now = 61
    assert loader.get_json("t/ttl") == {"v": 2}


def test_invalidate_forces_a_reread(stack, loader_parts):
    loader, _, _ = loader_parts
    stack.secrets.create_secret(Name="t/inv", SecretString=json.dumps({"v": 1}))
    loader.get_json("t/inv")
    stack.secrets.put_secret_value(SecretId="t/inv", SecretString=json.dumps({"v": 2}))
    loader.invalidate("t/inv")
    assert loader.get_json("t/inv") == {"v": 2}


def test_client_is_built_once(stack, loader_parts):
    loader, _, calls = loader_parts
    stack.secrets.create_secret(Name="t/once", SecretString="{}")
    loader.get_json("t/once")
    loader.invalidate("t/once")
    loader.get_json("t/once")
    assert calls == [1]


def test_missing_secret_is_a_configuration_error_that_does_not_name_it(loader_parts):
    loader, _, _ = loader_parts
    with pytest.raises(ConfigurationError, match="cannot be read") as raised:
        loader.get_json("t/missing")
    assert "t/missing" not in str(raised.value)  # the id goes to the log, not to callers


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"s"'])
def test_non_object_secret_is_secret_error(stack, loader_parts, text):
    loader, _, _ = loader_parts
    name = f"t/bad-{abs(hash(text))}"
    stack.secrets.create_secret(Name=name, SecretString=text)
    with pytest.raises(ConfigurationError, match="not a JSON object") as raised:
        loader.get_json(name)
    assert name not in str(raised.value)


def test_unreachable_service_is_secret_error_and_not_cached(stack):
    import boto3

    dead = boto3.client(
        "secretsmanager", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    clients = iter([dead, stack.secrets])
    stack.secrets.create_secret(Name="t/later", SecretString='{"ok": true}')
    loader = SecretsLoader(lambda: next(clients))
    with pytest.raises(SecretError, match="unreachable") as raised:
        loader.get_json("t/later")
    assert type(raised.value).__name__ == "ServiceUnavailableError"  # transient, not a configuration error
    loader._client = stack.secrets  # the service is back
    assert loader.get_json("t/later") == {"ok": True}
