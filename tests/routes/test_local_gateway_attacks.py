"""The local gateway under malformed framing: a JSON answer, never a dropped connection or an unbounded read.

API Gateway answers a malformed ``Content-Length`` with a 400 and refuses a
payload over 10 MB with a 413 before the function runs.  Chalice's handler
raised on the first (a traceback and a dropped connection) and read the
second into memory whatever its size.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support import local_gateway
from tools import local_gateway as local_gateway_module


@pytest.fixture(scope="module")
def port(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with local_gateway(tmp_path_factory.mktemp("local-gateway-attacks")) as url:
        yield int(url.rsplit(":", 1)[1])


def exchange(port: int, head: bytes, timeout: float = 5.0) -> tuple[int, bytes, bytes]:
    """Send ``head`` (no body follows) and read the reply until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head)
        reply = b""
        try:
            while chunk := conn.recv(65536):
                reply += chunk
        except TimeoutError:
            pass  # what arrived so far is the answer (or nothing)
    status_line, _, rest = reply.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), reply or b"the connection was dropped without an answer"
    return int(status_line.split()[1]), headers, payload


@pytest.mark.parametrize("value", [b"abc", b"-5", b"1e3", b"\xff"])
def test_a_malformed_content_length_is_a_json_400(port: int, value: bytes) -> None:
    status, headers, payload = exchange(
        port, b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + value
        + b"\r\n\r\n"
    )  # fmt: skip
    assert status == 400
    assert b"Access-Control-Allow-Origin: *" in headers
    assert "Content-Length" in json.loads(payload)["message"]


def test_a_body_over_api_gateways_limit_is_413_before_it_is_read(port: int) -> None:
    too_big = local_gateway_module.MAX_PAYLOAD_BYTES + 1
    head = f"POST /link HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {too_big}\r\n\r\n"
    status, headers, payload = exchange(port, head.encode())  # the body never comes: no answer would be a hang
    assert status == 413
    assert b"Access-Control-Allow-Origin: *" in headers
    assert json.loads(payload)["message"]


def test_the_gateway_still_serves_afterwards(port: int) -> None:
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json() == {"status": "ok"}


def test_an_absolute_form_request_target_does_not_put_its_host_in_the_link_header(port: int) -> None:
    """``GET http://evil.example/… HTTP/1.1`` names a host; API Gateway hands the function the path only."""
    for _ in range(2):  # so the page has a next one, whatever the table held
        requests.post(f"http://127.0.0.1:{port}/link", json={"link": "https://example.com/"}, timeout=10)
    status, headers, _ = exchange(
        port, b"GET http://evil.example/link?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    (link,) = [line for line in headers.split(b"\r\n") if line.lower().startswith(b"link:")]
    assert link.startswith(b"Link: </link?"), link
