"""The Basic-auth authorizer and the grants the views enforce."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from chalicelib.auth import Grant, UserDirectory, allowed, hash_password, parse_basic, parse_grants, verify_password
from tests.support import ADMIN, basic, body, get, send

READER = basic("reader", "readerpass")
DEMOWRITER = basic("demowriter", "demowriterpass")
BLOGREADER = basic("blogreader", "blogreaderpass")


# --- the authorizer through the routes ----------------------------------------


def test_no_credentials_is_401(client):
    response = get(client, "/docdb/blog/test")
    assert response.status_code == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"apiuser:wrong").decode(),
        "Basic " + base64.b64encode(b"nobody:apipassword").decode(),
        "Basic " + base64.b64encode(b"apiuser").decode(),
        "Basic " + base64.b64encode(b":apipassword").decode(),
        "Basic not-base64!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Bearer " + base64.b64encode(b"apiuser:apipassword").decode(),
        "Basic",
        "",
        "Basic " + "A" * 2000,
    ],
)
def test_bad_credentials_are_401(client, header):
    response = get(client, "/docdb/blog/test", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate", "").startswith("Basic realm=")


def test_scheme_is_case_insensitive(client):
    token = base64.b64encode(b"apiuser:apipassword").decode()
    assert get(client, "/docdb/blog/test", headers={"Authorization": f"basic {token}"}).status_code == 200


def test_reader_may_get_its_collection(client):
    assert get(client, "/docdb/demodb/democollection", headers=READER).status_code == 200
    assert get(client, "/docdb/demodb/{}".format("democollection"), headers=READER).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_reader_may_not_write(client, stack, method):
    before = stack.mongo.demodb.democollection.count_documents({})
    payload = {"filter": {"a": 1}, "update": {"$set": {"b": 1}}} if method == "PATCH" else {"filter": {"a": 1}}
    if method in ("POST", "PUT"):
        payload = {"a": 1}
    response = send(client, method, "/docdb/demodb/democollection", payload, READER)
    assert response.status_code == 403
    assert body(response)["Code"] == "ForbiddenError"
    assert stack.mongo.demodb.democollection.count_documents({}) == before


@pytest.mark.parametrize("url", ["/docdb/demodb/other", "/docdb/blog/democollection", "/docdb/blog/test"])
def test_reader_is_403_outside_its_grant(client, url):
    assert get(client, url, headers=READER).status_code == 403


def test_wildcard_collection_grant(client, collection):
    assert send(client, "POST", f"/docdb/demodb/{collection}", {"a": 1}, DEMOWRITER).status_code == 201
    assert get(client, f"/docdb/demodb/{collection}", headers=DEMOWRITER).status_code == 200
    assert send(client, "POST", f"/docdb/blog/{collection}", {"a": 1}, DEMOWRITER).status_code == 403


def test_mixed_grants(client, collection):
    assert get(client, f"/docdb/blog/{collection}", headers=BLOGREADER).status_code == 200
    assert send(client, "POST", f"/docdb/blog/{collection}", {"a": 1}, BLOGREADER).status_code == 403
    assert send(client, "POST", "/docdb/shared/notes", {"a": 1}, BLOGREADER).status_code == 201
    assert get(client, "/docdb/shared/other", headers=BLOGREADER).status_code == 403


def test_reserved_database_is_403_even_with_star_grant(client):
    assert get(client, "/docdb/admin/system.users", headers=ADMIN).status_code == 403


def test_links_and_movies_need_no_credentials(client):
    assert get(client, "/link").status_code == 200


def test_credentials_never_reach_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    get(client, "/docdb/blog/test", headers=ADMIN)
    get(client, "/docdb/blog/test", headers=basic("apiuser", "wrong-password-xyz"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("apipassword", "wrong-password-xyz", ADMIN["Authorization"].split()[1]):
        assert secret not in text


# --- the pieces ---------------------------------------------------------------


def test_hash_has_the_documented_form_and_verifies():
    encoded = hash_password("s3cret")
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret ", encoded)


def test_same_password_gets_different_salts():
    assert hash_password("x") != hash_password("x")


def test_hash_written_by_hand_with_hashlib_verifies():
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"pw", salt=salt, n=1024, r=8, p=1, dklen=24)
    encoded = f"scrypt$1024$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password("pw", encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        "plain",
        "scrypt$16384$8$1$c2FsdA==",
        "bcrypt$16384$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$3$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$4194304$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
    ],
)
def test_malformed_or_abusive_hashes_are_refused(encoded):
    with pytest.raises(ValueError):
        verify_password("x", encoded)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic " + base64.b64encode(b"u:p").decode(), ("u", "p")),
        ("Basic " + base64.b64encode(b"u:p:with:colons").decode(), ("u", "p:with:colons")),
        ("Basic " + base64.b64encode("ü:ñ".encode()).decode(), ("ü", "ñ")),
        (None, None),
        ("Basic ", None),
        ("Digest abc", None),
    ],
)
def test_parse_basic(header, expected):
    assert parse_basic(header) == expected


@pytest.mark.parametrize(
    ("grants", "db", "coll", "method", "ok"),
    [
        ("*/*:rw", "a", "b", "DELETE", True),
        ("a/*:r", "a", "b", "GET", True),
        ("a/*:r", "a", "b", "POST", False),
        ("a/b:rw", "a", "c", "GET", False),
        ("*/b:r", "z", "b", "GET", True),
        ("a/b:r,a/c:rw", "a", "c", "PATCH", True),
        ("", "a", "b", "GET", False),
    ],
)
def test_grants(grants, db, coll, method, ok):
    assert allowed(parse_grants(grants), db, coll, method) is ok


@pytest.mark.parametrize("text", ["a/b", "a:rw", "a/b:w", "/b:r", "a/:r", "a/b:rwx"])
def test_malformed_grant_is_refused(text):
    with pytest.raises(ValueError):
        Grant.parse(text)


class Secret:
    """Stands in for the TTL-cached loader: the same object until it is re-read."""

    def __init__(self, users):
        self.value = {"users": users}

    def __call__(self):
        return self.value

    def reread(self, users):
        self.value = {"users": users}


def _scrypt_runs(monkeypatch):
    import chalicelib.auth as auth

    runs: list[int] = []
    real = auth._scrypt

    def counting(*args):
        runs.append(1)
        return real(*args)

    monkeypatch.setattr(auth, "_scrypt", counting)
    return runs


def test_successful_check_is_cached(monkeypatch):
    directory = UserDirectory(Secret({"u": {"password": hash_password("p"), "grants": ["a/b:r"]}}), 60)
    runs = _scrypt_runs(monkeypatch)
    header = "Basic " + base64.b64encode(b"u:p").decode()
    assert directory.authenticate(header) == ("u", "a/b:r")
    assert directory.authenticate(header) == ("u", "a/b:r")
    assert len(runs) == 1


def test_failed_check_is_not_cached(monkeypatch):
    directory = UserDirectory(Secret({"u": {"password": hash_password("p"), "grants": []}}), 60)
    runs = _scrypt_runs(monkeypatch)
    header = "Basic " + base64.b64encode(b"u:wrong").decode()
    assert directory.authenticate(header) is None
    assert directory.authenticate(header) is None
    assert len(runs) == 2


def test_cached_success_ends_when_the_secret_is_reread():
    secret = Secret({"u": {"password": hash_password("p"), "grants": []}})
    directory = UserDirectory(secret, 3600)
    header = "Basic " + base64.b64encode(b"u:p").decode()
    assert directory.authenticate(header) is not None
    secret.reread({"u": {"password": hash_password("changed"), "grants": []}})
    assert directory.authenticate(header) is None
    secret.reread({})
    assert directory.authenticate(header) is None


def test_malformed_hash_costs_a_scrypt_run_and_refuses(monkeypatch):
    directory = UserDirectory(Secret({"u": {"password": "plain-text", "grants": []}}), 60)
    directory.authenticate("Basic " + base64.b64encode(b"nobody:x").decode())  # builds the dummy hash
    runs = _scrypt_runs(monkeypatch)
    assert directory.authenticate("Basic " + base64.b64encode(b"u:plain-text").decode()) is None
    assert len(runs) == 1


def test_grant_with_a_comma_in_a_name_is_refused():
    with pytest.raises(ValueError):
        Grant.parse("db/c,*/*:r")


def test_unknown_user_runs_the_same_scrypt_as_a_wrong_password(monkeypatch):
    import chalicelib.auth as auth

    directory = UserDirectory(Secret({"u": {"password": hash_password("p"), "grants": []}}), 60)
    runs: list[tuple[int, int, int, int]] = []
    real = auth._scrypt

    def counting(password, salt, n, r, p, dklen):
        runs.append((n, r, p, dklen))
        return real(password, salt, n, r, p, dklen)

    directory.authenticate("Basic " + base64.b64encode(b"nobody:x").decode())  # builds the dummy hash
    monkeypatch.setattr(auth, "_scrypt", counting)
    directory.authenticate("Basic " + base64.b64encode(b"nobody:p").decode())
    directory.authenticate("Basic " + base64.b64encode(b"u:wrong").decode())
    assert len(runs) == 2 and runs[0] == runs[1]
