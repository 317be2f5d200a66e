"""The favorite-movies API, per API.md, against DynamoDB served by moto."""

from __future__ import annotations

import pytest

from tests.support import body, get, send, walk

pytestmark = pytest.mark.usefixtures("empty_tables")


def test_put_then_get_movie(client):
    response = send(client, "PUT", "/movies/sander", {"favorite_movie": "Interstellar"})
    assert response.status_code == 200
    assert body(response) == {"name": "sander", "favorite_movie": "Interstellar"}
    assert body(get(client, "/movies/sander")) == {"name": "sander", "favorite_movie": "Interstellar"}


def test_put_replaces_existing_movie(client):
    send(client, "PUT", "/movies/ann", {"favorite_movie": "Alien"})
    send(client, "PUT", "/movies/ann", {"favorite_movie": "Aliens"})
    assert body(get(client, "/movies/ann"))["favorite_movie"] == "Aliens"


def test_get_missing_movie_is_404(client):
    response = get(client, "/movies/nobody")
    assert response.status_code == 404
    assert body(response)["Code"] == "NotFoundError"


def test_delete_movie_is_204_then_404(client):
    send(client, "PUT", "/movies/bob", {"favorite_movie": "Heat"})
    assert send(client, "DELETE", "/movies/bob").status_code == 204
    assert get(client, "/movies/bob").status_code == 404
    assert send(client, "DELETE", "/movies/bob").status_code == 404


@pytest.mark.parametrize(
    "payload",
    [{}, {"favorite_movie": ""}, {"favorite_movie": "   "}, {"favorite_movie": "x" * 513},
     {"favorite_movie": 7}, {"favorite_movie": "Heat", "year": 1995}, ["Heat"]],
)
def test_invalid_movie_is_400_and_leaves_stored_movie(client, payload):
    send(client, "PUT", "/movies/carol", {"favorite_movie": "Heat"})
    response = send(client, "PUT", "/movies/carol", payload)
    assert response.status_code == 400
    assert body(get(client, "/movies/carol"))["favorite_movie"] == "Heat"


def test_movie_title_of_512_chars_is_accepted(client):
    assert send(client, "PUT", "/movies/dan", {"favorite_movie": "x" * 512}).status_code == 200


def test_list_movies_walks_every_movie_once(client):
    names = {f"person{i:02d}" for i in range(12)}
    for name in names:
        send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"})
    items, pages = walk(client, "/movies?limit=5")
    assert pages == 3
    assert sorted(i["name"] for i in items) == sorted(names)
    assert all(i["favorite_movie"] == "Heat" for i in items)


@pytest.mark.parametrize("name", ["n" * 2049, "\U0001f600" * 513], ids=["ascii", "emoji"])
def test_name_over_2048_utf8_bytes_is_404_on_get_and_400_on_put(client, name):
    assert get(client, f"/movies/{name}").status_code == 404
    assert send(client, "DELETE", f"/movies/{name}").status_code == 404
    assert send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"}).status_code == 400


def test_name_of_2048_utf8_bytes_is_accepted(client):
    name = "\U0001f600" * 512
    assert send(client, "PUT", f"/movies/{name}", {"favorite_movie": "Heat"}).status_code == 200
    assert body(get(client, f"/movies/{name}"))["name"] == name
