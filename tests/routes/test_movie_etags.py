"""Favorite movies with ETags: conditions checked by DynamoDB in the write itself (issue 13)."""

from __future__ import annotations

import pytest

from chalicelib.tables.movies import REV
from tests.support import body, get, send

pytestmark = pytest.mark.usefixtures("empty_tables")
TABLE = "movies"


def put(client, name, title, **headers):
    return send(client, "PUT", f"/movies/{name}", {"favorite_movie": title}, _headers(headers))


def delete(client, name, **headers):
    return send(client, "DELETE", f"/movies/{name}", headers=_headers(headers))


def _headers(headers):
    return {k.replace("_", "-").title(): v for k, v in headers.items()}


def test_get_and_put_return_the_same_strong_etag_and_unchanged_bodies(client, stack):
    response = put(client, "sander", "Interstellar")
    assert body(response) == {"name": "sander", "favorite_movie": "Interstellar"}
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    response = get(client, "/movies/sander")
    assert body(response) == {"name": "sander", "favorite_movie": "Interstellar"}
    assert response.headers["ETag"] == etag
    assert body(get(client, "/movies")) == [{"name": "sander", "favorite_movie": "Interstellar"}]
    item = stack.dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "sander"}})["Item"]
    assert REV in item  # kept in the item, never shown


def test_every_put_changes_the_etag_even_with_the_same_title(client):
    first = put(client, "ann", "Alien").headers["ETag"]
    assert put(client, "ann", "Alien").headers["ETag"] != first


def test_if_match_replaces_only_the_current_version(client):
    etag = put(client, "ann", "Alien").headers["ETag"]
    response = put(client, "ann", "Aliens", if_match=etag)
    assert response.status_code == 200
    assert put(client, "ann", "Alien 3", if_match=etag).status_code == 412
    assert body(get(client, "/movies/ann"))["favorite_movie"] == "Aliens"
    assert put(client, "ann", "Alien 3", if_match=f'"x", {response.headers["ETag"]}').status_code == 200


def test_if_none_match_star_only_creates(client):
    assert put(client, "bob", "Heat", if_none_match="*").status_code == 200
    assert put(client, "bob", "Ronin", if_none_match="*").status_code == 412
    assert body(get(client, "/movies/bob"))["favorite_movie"] == "Heat"


def test_if_match_on_a_missing_movie_is_412_and_creates_nothing(client):
    for tag in ("*", '"r0123456789abcdef0123456789abcdef"'):
        assert put(client, "ghost", "Heat", if_match=tag).status_code == 412
    assert get(client, "/movies/ghost").status_code == 404


def test_delete_honours_if_match_and_tells_404_from_412(client):
    stale = put(client, "carol", "Heat").headers["ETag"]
    current = put(client, "carol", "Ronin").headers["ETag"]
    assert delete(client, "carol", if_match=stale).status_code == 412
    assert delete(client, "carol", if_match=f"W/{current}").status_code == 412
    assert delete(client, "carol", if_none_match="*").status_code == 412
    assert delete(client, "carol", if_match=current).status_code == 204
    assert delete(client, "carol", if_match=current).status_code == 404
    assert delete(client, "carol", if_match="*").status_code == 404


@pytest.mark.parametrize("tag", ['"forged"', '"r' + "z" * 32 + '"', '"h' + "0" * 32 + '"', 'W/"x"'])
def test_a_forged_etag_is_412_never_500(client, tag):
    put(client, "dan", "Heat")
    assert put(client, "dan", "Ronin", if_match=tag).status_code == 412
    assert delete(client, "dan", if_match=tag).status_code == 412
    assert body(get(client, "/movies/dan"))["favorite_movie"] == "Heat"


@pytest.mark.parametrize("header", ["abc", '"a" "b"', '"a", *'])
def test_a_malformed_condition_is_400(client, header):
    put(client, "eve", "Heat")
    assert put(client, "eve", "Ronin", if_match=header).status_code == 400
    assert delete(client, "eve", if_none_match=header).status_code == 400
    assert get(client, "/movies/eve", headers={"If-None-Match": header}).status_code == 400


def test_get_if_none_match_is_304_with_the_etag(client):
    etag = put(client, "fay", "Heat").headers["ETag"]
    response = get(client, "/movies/fay", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.body in (b"", "")


def test_an_item_written_before_revisions_gets_a_usable_etag(client, stack):
    stack.dynamodb.put_item(TableName=TABLE, Item={"name": {"S": "old"}, "favorite_movie": {"S": "Heat"}})
    etag = get(client, "/movies/old").headers["ETag"]
    assert get(client, "/movies/old").headers["ETag"] == etag
    stack.dynamodb.put_item(TableName=TABLE, Item={"name": {"S": "old"}, "favorite_movie": {"S": "Ronin"}})
    assert put(client, "old", "Alien", if_match=etag).status_code == 412
    assert delete(client, "old", if_match=etag).status_code == 412
    current = get(client, "/movies/old").headers["ETag"]
    response = put(client, "old", "Alien", if_match=current)
    assert response.status_code == 200
    assert response.headers["ETag"] != current
    assert delete(client, "old", if_match=response.headers["ETag"]).status_code == 204


def test_etag_is_exposed_to_browsers(client):
    response = put(client, "gus", "Heat")
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
