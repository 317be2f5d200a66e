"""Guards of the Basic-auth path that a plausible slip would break silently.

Each test here was checked by planting the slip it names and seeing it fail
(issue 18): grants that fail open, a success cache keyed too loosely or never
expiring, and a password check that stops being constant-time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.local import LambdaContext

import app as app_module
from chalicelib.auth import UserDirectory, hash_password, verify_password
from tests.support import USERS, Stack, basic, body, get, send
from tools import local_stack


def _header(user: str, password: str) -> str:
    return basic(user, password)["Authorization"]


class Secret:
    """Stands in for the TTL-cached loader: the same object until it is re-read."""

    def __init__(self, users: dict[str, Any]) -> None:
        self.value = {"users": users}

    def __call__(self) -> dict[str, Any]:
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- 1. no grants means no access ------------------------------------------------

REVOKED = {"revoked": "revokedpass", "nogrants": "nograntspass"}
PATHS = ["/docdb/blog/guards", "/docdb/demodb/guards", "/docdb/demodb/democollection", "/docdb/shared/notes"]
PAYLOADS: dict[str, Any] = {
    "GET": None,
    "POST": {"a": 1},
    "PUT": {"a": 1},
    "PATCH": {"filter": {}, "update": {"$set": {"b": 1}}},
    "DELETE": {"filter": {"a": 1}},
}


@pytest.fixture
def users_without_grants(stack: Stack, fresh_app: None) -> Iterator[None]:
    """The users secret with two more users: one whose grants list is empty
    (the last grant revoked) and one whose entry has no grants at all."""
    users = {name: {"password": hash_password(password), "grants": grants}
             for name, (password, grants) in USERS.items()}
    users["revoked"] = {"password": hash_password(REVOKED["revoked"]), "grants": []}
    users["nogrants"] = {"password": hash_password(REVOKED["nogrants"])}
    local_stack.put_secret(stack.secrets, local_stack.USERS_SECRET_ID, {"users": users})
    try:
        yield
    finally:
        stack.seed()


@pytest.mark.parametrize("user", ["revoked", "nogrants"])
def test_a_user_without_grants_logs_in_and_is_403_everywhere(client, stack, users_without_grants, user):
    for path in PATHS:
        database, collection = path.split("/")[2:]
        before = stack.mongo[database][collection].count_documents({})
        for method, payload in PAYLOADS.items():
            response = send(client, method, path, payload, basic(user, REVOKED[user]))
            assert response.status_code == 403, (method, path, response.body)
            assert body(response)["Code"] == "ForbiddenError"
        assert stack.mongo[database][collection].count_documents({}) == before


def test_the_user_without_grants_did_log_in(client, users_without_grants):
    # Not a 401: the credentials are right, the grants are what is missing.
    assert get(client, "/docdb/blog/guards", headers=basic("revoked", "wrongpass")).status_code == 401
    assert get(client, "/docdb/blog/guards", headers=basic("revoked", "revokedpass")).status_code == 403


def _docdb_event(method: str, authorizer: dict[str, Any]) -> dict[str, Any]:
    """What API Gateway hands the function once its authorizer has allowed a call."""
    return {
        "resource": "/docdb/{db}/{collection}",
        "path": "/docdb/blog/guards",
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "multiValueQueryStringParameters": None,
        "pathParameters": {"db": "blog", "collection": "guards"},
        "stageVariables": {},
        "requestContext": {
            "httpMethod": method,
            "resourcePath": "/docdb/{db}/{collection}",
            "path": "/docdb/blog/guards",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": authorizer,
        },
        "body": '{"a": 1}' if method != "GET" else None,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize(
    "authorizer",
    [{"principalId": "someone"}, {"principalId": "someone", "grants": ""}, {}],
    ids=["no-grants-key", "empty-grants", "no-context"],
)
def test_a_context_without_grants_is_403_before_any_backend(monkeypatch, method, authorizer):
    def no_backend() -> Any:
        raise AssertionError("a request without grants reached the database")

    monkeypatch.setattr(app_module, "get_collection_service", no_backend)
    response = app_module.app(_docdb_event(method, authorizer), LambdaContext("docdb_any", 256))
    assert response["statusCode"] == 403, response
    assert json.loads(response["body"])["Code"] == "ForbiddenError"


# --- 1b. the success cache is keyed by the whole header ----------------------------


def test_a_wrong_password_after_a_good_login_is_refused():
    directory = UserDirectory(Secret({"u": {"password": hash_password("right"), "grants": ["a/b:r"]}}), 300)
    assert directory.authenticate(_header("u", "right")) == ("u", "a/b:r")
    assert directory.authenticate(_header("u", "wrong")) is None
    assert directory.authenticate(_header("u", "right ")) is None
    assert directory.authenticate(_header("u", "right")) == ("u", "a/b:r")


def test_a_wrong_password_after_a_good_login_is_401_through_the_route(client, fresh_app):
    assert get(client, "/docdb/blog/guards", headers=basic("apiuser", "apipassword")).status_code == 200
    assert get(client, "/docdb/blog/guards", headers=basic("apiuser", "not-the-password")).status_code == 401


# --- 2. the digest comparison is constant-time ----------------------------------------


def test_verify_password_answers_exactly_what_compare_digest_says(monkeypatch):
    encoded = hash_password("right", n=1024)
    calls: list[tuple[Any, Any]] = []
    verdict = {"value": False}

    def compare_digest(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return verdict["value"]

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    # The verdict is the spy's, not the digests': a right password the spy
    # rejects is rejected, a wrong one it accepts is accepted.  Any other
    # comparison of the digests (== included) would disagree with one of them.
    assert verify_password("right", encoded) is False
    verdict["value"] = True
    assert verify_password("wrong", encoded) is True
    assert len(calls) == 2
    for candidate, stored in calls:
        assert isinstance(candidate, bytes) and isinstance(stored, bytes)
        assert len(candidate) == len(stored) == 32


def test_verify_password_really_compares():
    encoded = hash_password("right", n=1024)
    assert verify_password("right", encoded) is True
    assert verify_password("wrong", encoded) is False


# --- 3. a cached success expires -----------------------------------------------------


def test_a_cached_success_expires_after_its_ttl(monkeypatch):
    import chalicelib.auth as auth

    runs: list[int] = []
    real = auth._scrypt

    def counting(*args: Any) -> bytes:
        runs.append(1)
        return real(*args)

    clock = Clock()
    users = {"u": {"password": hash_password("p", n=1024), "grants": ["a/b:r"]}}
    secret = Secret(users)
    directory = UserDirectory(secret, 300, clock=clock)
    monkeypatch.setattr(auth, "_scrypt", counting)
    header = _header("u", "p")

    assert directory.authenticate(header) == ("u", "a/b:r")
    clock.now += 299
    assert directory.authenticate(header) == ("u", "a/b:r")
    assert len(runs) == 1  # still cached
    clock.now += 2
    assert directory.authenticate(header) == ("u", "a/b:r")
    assert len(runs) == 2  # checked again once the TTL passed

    # And past its TTL the cache no longer vouches for a password that has
    # since changed, even when the loader hands back the same object.
    users["u"] = {"password": hash_password("changed", n=1024), "grants": ["a/b:r"]}
    clock.now += 301
    assert directory.authenticate(header) is None
