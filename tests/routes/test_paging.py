"""Paging across DynamoDB's 1 MB scan pages, limits, and forged cursors."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from chalicelib.paging import encode_cursor
from tests.support import body, get, next_url, walk

pytestmark = pytest.mark.usefixtures("empty_tables")


def put_links(stack, count, url_chars):
    """Write links straight to the table (fast), each about ``url_chars`` long."""
    ids = []
    for start in range(0, count, 25):
        batch = []
        for _ in range(min(25, count - start)):
            link_id = str(uuid.uuid4())
            ids.append(link_id)
            url = "https://example.com/" + "a" * (url_chars - 20)
            batch.append({"PutRequest": {"Item": {"link_id": {"S": link_id}, "link": {"S": url}}}})
        stack.dynamodb.batch_write_item(RequestItems={"links": batch})
    return ids


def test_walk_covers_more_than_one_megabyte_scan_page(client, empty_tables):
    ids = put_links(empty_tables, 700, 2000)  # ~1.4 MB: DynamoDB stops each scan page at 1 MB
    first = empty_tables.dynamodb.scan(TableName="links", Limit=1000)
    assert len(first["Items"]) < 700, "the table must span more than one scan page for this test to mean anything"
    response = get(client, "/link", {"limit": 1000})
    assert len(body(response)) == 700  # the page keeps scanning past the 1 MB cut
    items, _ = walk(client, "/link?limit=300")
    assert sorted(i["link_id"] for i in items) == sorted(ids)


def test_default_page_is_100_with_next_link(client, empty_tables):
    put_links(empty_tables, 150, 30)
    response = get(client, "/link")
    assert len(body(response)) == 100
    url = next_url(response)
    assert url is not None and url.startswith("/link?") and "next=" in url


def test_next_link_keeps_other_query_parameters(client, empty_tables):
    put_links(empty_tables, 5, 30)
    assert "limit=2" in next_url(get(client, "/link", {"limit": 2}))


def test_last_page_has_no_next_link(client, empty_tables):
    put_links(empty_tables, 4, 30)
    assert next_url(get(client, "/link", {"limit": 4})) is None


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5", "", "99999999999999999999", "１０"])
def test_bad_limit_is_400(client, limit):
    response = get(client, "/link", {"limit": limit})
    assert response.status_code == 400
    assert body(response)["Code"] == "BadRequestError"


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
        encode_cursor("link", v=""),
        encode_cursor("link", v=12),
        encode_cursor("link", v={"S": "x"}),
        encode_cursor("link", v="x" * 5000),
        encode_cursor("docdb", o=0, q="x"),
        "A" * 5000,
    ],
)
def test_forged_or_corrupt_cursor_is_400(client, token):
    for path in ("/link", "/movies"):
        response = get(client, path, {"next": token})
        assert response.status_code == 400, (path, token, response.body)
        assert body(response)["Code"] == "BadRequestError"


def test_cursor_of_another_list_is_400(client):
    assert get(client, "/link", {"next": encode_cursor("movie", v="sander")}).status_code == 400
    assert get(client, "/movies", {"next": encode_cursor("link", v=str(uuid.uuid4()))}).status_code == 400


def test_cursor_not_a_link_id_is_400(client):
    assert get(client, "/link", {"next": encode_cursor("link", v="sander")}).status_code == 400


def test_cursor_nested_past_the_parser_is_400(client):
    token = base64.urlsafe_b64encode(b"[" * 1100).decode().rstrip("=")
    assert get(client, "/link", {"next": token}).status_code == 400
    assert get(client, "/movies", {"next": token}).status_code == 400


def test_page_is_cut_before_lambda_response_limit_and_walk_continues(client, empty_tables):
    """300 links of 2,000 emoji: ~24 KB each once Lambda's runtime escapes them."""
    url = "https://example.com/" + "\U0001f600" * 2000
    ids = []
    for _batch in range(12):
        batch = []
        for _ in range(25):
            link_id = str(uuid.uuid4())
            ids.append(link_id)
            batch.append({"PutRequest": {"Item": {"link_id": {"S": link_id}, "link": {"S": url}}}})
        empty_tables.dynamodb.batch_write_item(RequestItems={"links": batch})
    response = get(client, "/link", {"limit": 1000})
    page = body(response)
    escaped = len(json.dumps(response.body.decode()))  # as the Python 3.11 runtime writes it
    assert 0 < len(page) < 300
    assert escaped <= 5 * 1024 * 1024
    assert next_url(response) is not None
    items, _ = walk(client, "/link?limit=1000")
    assert sorted(i["link_id"] for i in items) == sorted(ids)
    assert all(i["link"] == url for i in items)
