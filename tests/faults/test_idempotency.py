"""Safe retries (issue 14): ``Idempotency-Key`` makes every write happen exactly once."""

from __future__ import annotations

import uuid

from tests.support import ADMIN, send


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def new_key() -> str:
    return f"k-{uuid.uuid4()}"


def test_keyed_insert_replays_without_a_second_document(client, stack, collection):
    path = f"/docdb/blog/{collection}"
    key = new_key()
    first = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    assert first.status_code == 201, first.body
    again = send(client, "POST", path, {"n": 1}, keyed(ADMIN, key))
    assert again.status_code == 201, again.body
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert stack.mongo.blog[collection].count_documents({}) == 1
