"""DocumentDB cursors are signed, so an edited or forged one is a 400 (issue 11, README's promise)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from chalicelib import paging
from tests.support import ADMIN, body, get, next_url, send, walk
from tools import local_stack


def _token(response) -> str:
    link = next_url(response)
    assert link is not None
    return parse_qs(urlsplit(link).query)["next"][0]


def _edit(token: str, **changes) -> str:
    payload, _, signature = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    edited = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{edited}.{signature}" if signature else edited


def _first_page(client, collection):
    url = f"/docdb/blog/{collection}"
    assert send(client, "POST", url, [{"n": i} for i in range(5)], ADMIN).status_code == 201
    response = get(client, url, {"limit": 2}, ADMIN)
    assert response.status_code == 200
    return url, _token(response)


def test_an_edited_offset_is_a_400(client, collection):
    url, token = _first_page(client, collection)
    assert get(client, url, {"limit": 2, "next": token}, ADMIN).status_code == 200
    edited = _edit(token, o=0)
    assert get(client, url, {"limit": 2, "next": edited}, ADMIN).status_code == 400


def test_a_cursor_without_its_signature_is_a_400(client, collection):
    url, token = _first_page(client, collection)
    unsigned = token.partition(".")[0]
    assert get(client, url, {"limit": 2, "next": unsigned}, ADMIN).status_code == 400


def test_a_cursor_forged_without_the_key_is_a_400(client, collection):
    url, token = _first_page(client, collection)
    data = json.loads(base64.urlsafe_b64decode(token.partition(".")[0] + "=="))
    forged = paging.encode_cursor("docdb", b"a guessed key", **{k: v for k, v in data.items() if k != "k"})
    assert get(client, url, {"limit": 2, "next": forged}, ADMIN).status_code == 400


def test_signed_cursors_still_walk_every_document_once(client, collection):
    url = f"/docdb/blog/{collection}"
    assert send(client, "POST", url, [{"n": i} for i in range(7)], ADMIN).status_code == 201
    items, pages = walk(client, f"{url}?limit=2", ADMIN)
    assert sorted(d["n"] for d in items) == list(range(7)) and pages == 4


def test_a_rotated_database_password_retires_outstanding_cursors(client, stack, collection, fresh_app):
    url, token = _first_page(client, collection)
    stack.mongo.admin.command("updateUser", stack.secantus.user, pwd="rotated-for-cursors")
    try:
        local_stack.put_secret(stack.secrets, local_stack.DOCDB_SECRET_ID,
                               {**stack.secantus.secret(), "password": "rotated-for-cursors"})
        import app as app_module

        app_module.deps.reset()  # a new container reads the new secret
        response = get(client, url, {"limit": 2, "next": token}, ADMIN)
        assert response.status_code == 400, response.body
        assert "start again" in body(response)["Message"]
    finally:
        stack.mongo.admin.command("updateUser", stack.secantus.user, pwd=stack.secantus.password)
        stack.seed()
