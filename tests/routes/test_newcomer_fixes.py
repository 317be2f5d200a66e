"""Small things a newcomer trips over: a trailing slash, a date-only $date, the README's own example."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from tests.support import ADMIN, ROOT, body, send


def test_post_link_with_a_trailing_slash_answers_a_single_slash_location(client, empty_tables):
    response = send(client, "POST", "/link/", {"link": "https://example.com/a"})
    assert response.status_code == 201, response.body
    link_id = body(response)["link_id"]
    assert response.headers["Location"] == f"/link/{link_id}"
    assert client.http.get(response.headers["Location"]).status_code == 200


def test_post_link_without_a_slash_is_unchanged(client, empty_tables):
    response = send(client, "POST", "/link", {"link": "https://example.com/b"})
    assert response.headers["Location"] == f"/link/{body(response)['link_id']}"


def test_a_date_only_date_names_the_value_and_the_accepted_forms(client, collection):
    response = send(client, "POST", f"/docdb/blog/{collection}", {"when": {"$date": "2024-05-17"}}, ADMIN)
    assert response.status_code == 400
    message = body(response)["Message"]
    assert "not valid JSON" not in message
    assert '{"$date": "2024-05-17"}' in message
    assert "2024-05-17T00:00:00Z" in message and "$numberLong" in message


def test_a_date_only_date_in_a_filter_names_the_value_too(client, collection):
    query = urlencode({"filter": '{"when": {"$gte": {"$date": "2024-05-17"}}}'})
    response = client.http.get(f"/docdb/blog/{collection}?{query}", headers=ADMIN)
    assert response.status_code == 400
    assert '{"$date": "2024-05-17"}' in body(response)["Message"]


def test_a_date_with_a_time_is_still_stored(client, collection, stack):
    response = send(client, "POST", f"/docdb/blog/{collection}", {"when": {"$date": "2024-05-17T00:00:00Z"}}, ADMIN)
    assert response.status_code == 201, response.body
    assert body(response)["when"] == {"$date": "2024-05-17T00:00:00.000Z"}


def test_broken_json_is_still_called_broken_json(client, collection):
    response = send(client, "POST", f"/docdb/blog/{collection}", raw=b'{"a": ', headers=ADMIN)
    assert response.status_code == 400
    assert "not valid JSON" in body(response)["Message"]


def _readme_docdb_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### DocumentDB collections", 1)[1]
    return section.split("```sh", 1)[1].split("```", 1)[0]


def test_the_readme_filter_example_finds_a_document_the_readme_inserted(client, collection):
    block = _readme_docdb_block()
    inserts = re.findall(r"-X (?:PUT|POST) .*?-d '([^']+)' http://\$U:\$P@\$BASE/docdb/blog/test", block)
    filters = re.findall(r"--data-urlencode 'filter=([^']+)'", block)
    assert inserts and filters, "the README's DocumentDB examples changed shape; update this test"
    for document in inserts:
        inserted = send(client, "POST", f"/docdb/blog/{collection}", raw=document.encode(), headers=ADMIN)
        assert inserted.status_code == 201, inserted.body
    for flt in filters:
        response = client.http.get(f"/docdb/blog/{collection}?{urlencode({'filter': flt})}", headers=ADMIN)
        assert response.status_code == 200, response.body
        assert body(response), f"the README's filter {flt} finds none of the documents the README inserts"
