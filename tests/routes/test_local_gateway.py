"""tools/local_gateway.py behaves as API Gateway does, over real HTTP.

The same requests go through the local gateway (what `make run` serves) and,
as API Gateway would hand them to Lambda, as proxy events to the app, and
must come out the same.  Then what the gateway answers itself: JSON 404s
for unknown routes, 401s with a challenge, CORS headers on every error,
never a credential echoed, and no Nagle stall on keep-alive connections.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from chalice.local import LambdaContext

import app as app_module
from chalicelib import web
from chalicelib.gateway import CHALLENGE
from tests.support import ADMIN, ROOT, basic, local_gateway
from tools import local_gateway as local_gateway_module
from tools import local_stack


@pytest.fixture(scope="module")
def api_url(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_gateway(tmp_path_factory.mktemp("local-gateway")) as url:
        yield url


# --- the same request, locally and as API Gateway hands it to Lambda ------------------------


def _stage_environment() -> dict[str, str]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return config["stages"]["local"]["environment_variables"]


def _context() -> LambdaContext:
    return LambdaContext(function_name="api_handler", memory_size=512, max_runtime_ms=25_000)


def through_api_gateway(
    method: str, raw_path: str, resource: str, params: dict[str, str], headers: dict[str, str], body: bytes | None
) -> tuple[int, Any]:
    """A REST API proxy event, as API Gateway builds it: the path as sent, its parameters decoded."""
    event: dict[str, Any] = {
        "resource": resource,
        "path": raw_path,
        "httpMethod": method,
        "headers": {k.lower(): v for k, v in headers.items()},
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{raw_path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body.decode() if body is not None else None,
        "isBase64Encoded": False,
    }
    route = app_module.app.routes[resource][method]
    if route.authorizer is not None:
        # The TOKEN authorizer first; API Gateway puts its context beside the request.
        answer = app_module.basic_auth(
            {"type": "TOKEN", "authorizationToken": headers["Authorization"], "methodArn": "arn:test"}, _context()
        )
        event["requestContext"]["authorizer"] = {**answer["context"], "principalId": answer["principalId"]}
    response = app_module.app(event, _context())
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def through_local_gateway(
    api_url: str, method: str, raw_path: str, headers: dict[str, str], body: bytes | None
) -> tuple[int, Any]:
    response = requests.request(method, api_url + raw_path, headers=headers, data=body, timeout=30)
    return response.status_code, response.json() if response.content else None


JSON = {"Content-Type": "application/json"}
MOVIE = json.dumps({"favorite_movie": "Interstellar"}).encode()
# (method, path as sent, the route API Gateway matches, the parameters it decodes, credentials, body)
CASES = [
    ("PUT", "/movies/John%20Smith", "/movies/{name}", {"name": "John Smith"}, {}, MOVIE),
    ("GET", "/movies/John%20Smith", "/movies/{name}", {"name": "John Smith"}, {}, None),
    ("PUT", "/movies/caf%C3%A9%2Fbar", "/movies/{name}", {"name": "café/bar"}, {}, MOVIE),
    ("PUT", "/movies/100%25", "/movies/{name}", {"name": "100%"}, {}, MOVIE),
    ("GET", "/docdb/blog/%24cmd", "/docdb/{db}/{collection}", {"db": "blog", "collection": "$cmd"}, ADMIN, None),
    ("GET", "/docdb/bl%00og/x", "/docdb/{db}/{collection}", {"db": "bl\x00og", "collection": "x"}, ADMIN, None),
    ("GET", "/docdb/bl%2Fog/x", "/docdb/{db}/{collection}", {"db": "bl/og", "collection": "x"}, ADMIN, None),
    ("GET", "/docdb/demodb/demo%20notes", "/docdb/demodb/{collection}", {"collection": "demo notes"}, ADMIN, None),
]


@pytest.mark.parametrize(("method", "raw_path", "resource", "params", "headers", "body"), CASES,
                         ids=[f"{c[0]} {c[1]}" for c in CASES])  # fmt: skip
def test_local_gateway_and_api_gateway_events_give_the_same_outcome(
    api_url: str, monkeypatch: pytest.MonkeyPatch, method: str, raw_path: str, resource: str,
    params: dict[str, str], headers: dict[str, str], body: bytes | None,
) -> None:  # fmt: skip
    headers = {**JSON, **headers}
    local = through_local_gateway(api_url, method, raw_path, headers, body)
    for name, value in _stage_environment().items():
        monkeypatch.setenv(name, value)
    deployed = through_api_gateway(method, raw_path, resource, params, headers, body)
    assert local == deployed
    assert local[0] < 500


def test_an_encoded_movie_name_is_stored_decoded(api_url: str, stack: Any) -> None:
    response = requests.put(f"{api_url}/movies/John%20Smith", json={"favorite_movie": "Heat"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["name"] == "John Smith"
    item = stack.dynamodb.get_item(TableName=local_stack.MOVIES_TABLE, Key={"name": {"S": "John Smith"}})
    assert item["Item"]["favorite_movie"]["S"] == "Heat"
    raw = stack.dynamodb.get_item(TableName=local_stack.MOVIES_TABLE, Key={"name": {"S": "John%20Smith"}})
    assert "Item" not in raw


@pytest.mark.parametrize("collection", ["%24cmd", "system%2Eusers", "x%00y"])
def test_encoded_forbidden_names_are_refused_locally(api_url: str, collection: str) -> None:
    response = requests.get(f"{api_url}/docdb/blog/{collection}", headers=ADMIN, timeout=30)
    assert response.status_code in (400, 403), response.text


def test_a_path_that_is_not_utf8_is_a_json_400(api_url: str) -> None:
    response = requests.get(f"{api_url}/movies/%FF%FE", timeout=30)
    assert response.status_code == 400
    assert "UTF-8" in response.json()["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


# --- what the gateway answers itself -------------------------------------------------------


def assert_gateway_error_headers(response: requests.Response) -> None:
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert set(web.EXPOSED_HEADERS) <= exposed
    json.loads(response.text)


SECRET = basic("apiuser", "not-the-password-Zq8")


@pytest.mark.parametrize("path", ["/", "/nope", "/docdb/blog", "/docdb/blog/test/extra/more", "/link/a/b"])
@pytest.mark.parametrize("headers", [{}, SECRET], ids=["anonymous", "with-credentials"])
def test_unknown_routes_are_a_json_404_that_echoes_nothing(
    api_url: str, path: str, headers: dict[str, str]
) -> None:
    response = requests.get(api_url + path, headers=headers, timeout=30)
    assert response.status_code == 404
    assert_gateway_error_headers(response)
    token = SECRET["Authorization"].split()[1]
    assert token not in response.text and "not-the-password" not in response.text
    assert token not in str(response.headers)


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/link"), ("POST", "/movies/x"), ("PUT", "/health")])
def test_a_method_the_route_lacks_is_the_same_404(api_url: str, method: str, path: str) -> None:
    response = requests.request(method, api_url + path, headers=SECRET, json={}, timeout=30)
    assert response.status_code == 404
    assert_gateway_error_headers(response)


@pytest.mark.parametrize("headers", [{}, SECRET, {"Authorization": "Bearer x"}], ids=["none", "wrong", "bearer"])
def test_every_401_has_cors_json_and_a_challenge(api_url: str, headers: dict[str, str]) -> None:
    response = requests.get(f"{api_url}/docdb/blog/test", headers=headers, timeout=30)
    assert response.status_code == 401
    assert_gateway_error_headers(response)
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.json() == {"message": "Unauthorized"}
    assert "not-the-password" not in response.text


def test_successful_responses_expose_the_paging_headers(api_url: str) -> None:
    response = requests.get(f"{api_url}/link?limit=1", headers={"Origin": "https://app.example"}, timeout=30)
    assert response.status_code == 200
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Link", "X-Total-Count", "Location", "Retry-After", "ETag", "Idempotent-Replayed"} <= exposed


def test_preflight_allows_the_conditional_and_idempotency_headers(api_url: str) -> None:
    response = requests.options(
        f"{api_url}/docdb/blog/test", timeout=30,
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"},
    )  # fmt: skip
    assert response.status_code == 200
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_http_servers_own_refusals_are_json_with_cors(api_url: str) -> None:
    response = requests.request("TRACE", f"{api_url}/link", timeout=30)
    assert response.status_code == 501
    assert_gateway_error_headers(response)


def test_an_authorizer_that_raises_is_a_json_503_not_a_dropped_connection(api_url: str) -> None:
    """Non-ASCII credentials made the authorizer raise; API Gateway answers AUTHORIZER_FAILURE then."""
    port = int(api_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"GET /docdb/blog/test HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xc3\xa9\xff\r\n"
                     b"Connection: close\r\n\r\n")  # fmt: skip
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert status in (401, 503), reply  # 401 once the authorizer refuses such tokens itself
    assert b"Access-Control-Allow-Origin: *" in head
    json.loads(payload)
    if status == 503:
        assert payload == local_gateway_module.AUTHORIZER_FAILURE_BODY
        assert b"Retry-After: 5" in head


# --- keep-alive --------------------------------------------------------------------------


def test_keep_alive_replies_go_out_in_one_write_with_nagle_off() -> None:
    """What keeps a keep-alive reply from waiting ~40 ms for the client's delayed ACK.

    Python's http.server writes the headers and the body separately; with
    Nagle's algorithm on, the body then waits for the ACK of the headers.  The
    gateway's handler turns Nagle off and buffers each reply into one write.
    Checked on the handler itself, over a real connection, by counting what
    reaches the socket (how long a reply takes is for make bench).
    """
    from chalice import Chalice
    from chalice import local as chalice_local
    from chalice.config import Config

    tiny = Chalice("keepalive")

    @tiny.route("/movies/{name}", methods=["PUT"])
    def put_movie(name: str) -> dict[str, str]:
        return {"name": name, "favorite_movie": "Up"}

    writes: list[list[int]] = []  # per connection, the size of each write to the socket
    nodelay: list[int] = []

    class Counting(local_gateway_module.GatewayRequestHandler):
        def setup(self) -> None:
            super().setup()
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            sizes: list[int] = []
            writes.append(sizes)
            raw = self.wfile.raw  # a buffered writer over the socket (AttributeError if unbuffered)
            socket_write = raw.write

            def counted(data: Any) -> Any:
                sizes.append(len(data))
                return socket_write(data)

            raw.write = counted

    port = local_stack.free_port()
    server = chalice_local.LocalDevServer(tiny, Config.create(chalice_stage="local", app_name="keepalive"),
                                          "127.0.0.1", port, handler_cls=Counting,
                                          server_cls=local_gateway_module.GatewayServer)  # fmt: skip
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as session:
            for _ in range(5):
                response = session.put(f"http://127.0.0.1:{port}/movies/keepalive", json={"favorite_movie": "Up"},
                                       timeout=30)  # fmt: skip
                assert response.status_code == 200 and response.json()["favorite_movie"] == "Up"
    finally:
        server.shutdown()
        server.server.server_close()
    assert nodelay == [1], nodelay  # one connection throughout, Nagle off
    (sizes,) = writes
    assert len(sizes) == 5, sizes  # one write per reply: its headers and its body together
    assert all(size > len(b'{"name":"keepalive","favorite_movie":"Up"}') for size in sizes), sizes
