"""The links API, per API.md, against DynamoDB served by moto."""

from __future__ import annotations

import uuid

import pytest

from tests.support import body, get, send, walk

pytestmark = pytest.mark.usefixtures("empty_tables")


def create(client, url="https://example.com/a"):
    response = send(client, "POST", "/link", {"link": url})
    assert response.status_code == 201, response.body
    return body(response)["link_id"]


def test_post_link_returns_201_uuid4_and_location(client):
    response = send(client, "POST", "/link", {"link": "https://www.google.com"})
    assert response.status_code == 201
    link_id = body(response)["link_id"]
    assert uuid.UUID(link_id).version == 4
    assert response.headers["Location"] == f"/link/{link_id}"


def test_posted_link_can_be_read_back(client):
    link_id = create(client, "http://example.org/x?y=1")
    response = get(client, f"/link/{link_id}")
    assert response.status_code == 200
    assert body(response) == {"link_id": link_id, "link": "http://example.org/x?y=1"}


def test_list_links_returns_plain_array(client):
    ids = {create(client, f"https://example.com/{i}") for i in range(3)}
    response = get(client, "/link")
    assert response.status_code == 200
    assert {item["link_id"] for item in body(response)} == ids
    assert "Link" not in response.headers


def test_list_of_empty_table_is_empty_array(client):
    assert body(get(client, "/link")) == []


def test_get_missing_link_is_404(client):
    response = get(client, f"/link/{uuid.uuid4()}")
    assert response.status_code == 404
    assert body(response)["Code"] == "NotFoundError"


def test_get_link_with_non_uuid_id_is_404(client):
    assert get(client, "/link/not-a-uuid").status_code == 404


def test_delete_link_is_204_then_404(client):
    link_id = create(client)
    assert send(client, "DELETE", f"/link/{link_id}").status_code == 204
    assert get(client, f"/link/{link_id}").status_code == 404
    assert send(client, "DELETE", f"/link/{link_id}").status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"link": "ftp://example.com/file"},
        {"link": "javascript:alert(1)"},
        {"link": "https://"},
        {"link": "not a url"},
        {"link": "https://example.com/" + "a" * 2049},
        {"link": ""},
        {"link": 42},
        {"link": "https://example.com", "extra": 1},
        {},
        ["https://example.com"],
        {"link": "https://exa mple.com"},
        {"link": "https://example.com:99999/"},
    ],
)
def test_invalid_link_is_400_and_stores_nothing(client, payload):
    response = send(client, "POST", "/link", payload)
    assert response.status_code == 400, response.body
    assert body(response)["Code"] == "BadRequestError"
    assert body(get(client, "/link")) == []


def test_malformed_json_is_400(client):
    response = send(client, "POST", "/link", raw=b'{"link": ')
    assert response.status_code == 400
    assert body(get(client, "/link")) == []


def test_empty_body_is_400(client):
    assert send(client, "POST", "/link", raw=b"").status_code == 400


def test_non_json_content_type_is_415(client):
    response = client.http.post("/link", headers={"Content-Type": "text/plain"}, body=b"https://example.com")
    assert response.status_code == 415


def test_link_of_exactly_2048_chars_is_accepted(client):
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    link_id = create(client, url)
    assert body(get(client, f"/link/{link_id}"))["link"] == url


def test_cors_preflight_allows_any_origin(client):
    # The test client cannot represent a preflight's empty body, so ask the
    # local gateway it wraps (the same one `chalice local` serves).
    response = client.http._local_gateway.handle_request(
        method="OPTIONS", path="/link", body=b"",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert response["statusCode"] == 200
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["headers"]["Access-Control-Allow-Methods"]


def test_responses_and_errors_carry_cors_header(client):
    assert get(client, "/link").headers["Access-Control-Allow-Origin"] == "*"
    assert get(client, f"/link/{uuid.uuid4()}").headers["Access-Control-Allow-Origin"] == "*"


def test_walking_next_links_returns_every_link_once(client):
    ids = {create(client, f"https://example.com/{i}") for i in range(25)}
    items, pages = walk(client, "/link?limit=7")
    assert pages == 4
    assert sorted(i["link_id"] for i in items) == sorted(ids)


def test_unexpected_error_is_json_500_naming_the_request_id(client, use, monkeypatch, caplog):

    class Broken:
        def list(self, limit, cursor):
            raise RuntimeError("boom")

    use(links=Broken())
    response = get(client, "/link")
    assert response.status_code == 500
    payload = body(response)
    assert payload["Code"] == "InternalServerError"
    assert "request id" in payload["Message"]
    assert "boom" not in response.body.decode() and "Traceback" not in response.body.decode()
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_unreachable_dynamodb_is_503_with_retry_after(client, use, monkeypatch):
    from chalicelib import aws
    from chalicelib.tables.links import LinkStore
    from tools.local_stack import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setattr(aws, "_session", None)
    use(links=LinkStore(aws.client("dynamodb"), "links"))
    response = get(client, "/link")
    assert response.status_code == 503
    assert body(response)["Code"] == "ServiceUnavailableError"
    assert int(response.headers["Retry-After"]) > 0
    response = send(client, "POST", "/link", {"link": "https://example.com"})
    assert response.status_code == 503
