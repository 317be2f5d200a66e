"""Guards of the DynamoDB stores that a plausible slip would break silently.

Each test here was checked by planting the slip it names and seeing it fail
(issue 18): a create that overwrites on an id collision, and a movie name
too long for a DynamoDB key that is sent anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import chalicelib.aws
import chalicelib.tables.links
from tests.support import body, get, send

# --- 8. a colliding link id never overwrites a link ---------------------------------------


def _ids_starting_with(monkeypatch: pytest.MonkeyPatch, *first: str) -> list[str]:
    """Make LinkStore draw ``first`` as its next ids, then fresh uuid4s; returns every id drawn."""
    queue = [uuid.UUID(value) for value in first]
    drawn: list[str] = []

    def uuid4() -> uuid.UUID:
        value = queue.pop(0) if queue else uuid.uuid4()
        drawn.append(str(value))
        return value

    # Only links.py's view of the module: botocore draws uuid4s for its own headers.
    monkeypatch.setattr(chalicelib.tables.links, "uuid", SimpleNamespace(uuid4=uuid4, UUID=uuid.UUID))
    return drawn


def _create(client: Any, url: str) -> Any:
    return send(client, "POST", "/link", {"link": url})


def test_a_colliding_link_id_is_redrawn_and_the_existing_link_kept(client, monkeypatch):
    existing = body(_create(client, "https://example.com/first"))["link_id"]
    drawn = _ids_starting_with(monkeypatch, existing)
    response = _create(client, "https://example.com/second")
    assert response.status_code == 201, response.body
    new_id = body(response)["link_id"]
    assert drawn[0] == existing and len(drawn) == 2  # the collision did happen, and a new id was drawn
    assert new_id == drawn[1] != existing
    assert body(get(client, f"/link/{existing}")) == {"link_id": existing, "link": "https://example.com/first"}
    assert body(get(client, f"/link/{new_id}")) == {"link_id": new_id, "link": "https://example.com/second"}


def test_an_id_that_keeps_colliding_is_503_and_overwrites_nothing(client, monkeypatch):
    existing = body(_create(client, "https://example.com/kept"))["link_id"]
    drawn = _ids_starting_with(monkeypatch, existing, existing, existing, existing)
    response = _create(client, "https://example.com/intruder")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert drawn == [existing] * 3
    assert body(get(client, f"/link/{existing}")) == {"link_id": existing, "link": "https://example.com/kept"}


# --- 9. an over-long movie name never reaches DynamoDB -------------------------------------


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch, fresh_app: None) -> Iterator[list[str]]:
    """The name of every DynamoDB operation the app's stores send, as they send it."""
    calls: list[str] = []
    real: Callable[[str], Any] = chalicelib.aws.client

    def recording_client(service: str) -> Any:
        built = real(service)
        built.meta.events.register(f"before-call.{service}", lambda model, **_: calls.append(model.name))
        return built

    monkeypatch.setattr(chalicelib.aws, "client", recording_client)
    yield calls


@pytest.mark.parametrize("name", ["n" * 2049, "\U0001f600" * 513, "é" * 1025], ids=["ascii", "emoji", "accented"])
def test_an_over_long_movie_name_is_400_without_a_call_to_dynamodb(client, dynamodb_calls, name):
    response = send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"})
    assert response.status_code == 400
    assert dynamodb_calls == []
    assert "2048 bytes" in body(response)["Message"]
    assert get(client, f"/movies/{name}").status_code == 404
    assert send(client, "DELETE", f"/movies/{name}").status_code == 404
    assert dynamodb_calls == []


def test_a_movie_name_of_2048_bytes_does_reach_dynamodb(client, dynamodb_calls):
    # The recorder above sees real calls: a name at the limit is stored.
    name = "é" * 1024
    assert send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"}).status_code == 200
    assert dynamodb_calls == ["PutItem"]
