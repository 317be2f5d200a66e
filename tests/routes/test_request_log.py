"""One JSON line per request, with the fields Logs Insights queries use, and never a credential or a body."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests

import app as app_module
from chalicelib import requestlog
from tests.support import (
    ADMIN,
    ROOT,
    USERS,
    basic,
    body,
    create_key,
    data_api_action,
    data_api_namespace,
    record_external_log,
    send,
)  # fmt: skip
from tools import local_stack

FIELDS = {"type", "request_id", "method", "route", "path", "status", "latency_ms", "principal"}
READER = basic("reader", "readerpass")
# Markers that may appear in a request only where the log must not copy it from.
BODY_MARK, QUERY_MARK, HEADER_MARK = (f"mark-{uuid.uuid4().hex}" for _ in range(3))


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[list[str]]:
    handler = _Lines()
    requestlog.log.addHandler(handler)
    try:
        yield handler.lines
    finally:
        requestlog.log.removeHandler(handler)


def _requests(client, collection):
    """A spread of outcomes: public and authenticated, 2xx, 4xx, bodies, filters and odd headers."""
    send(client, "POST", "/link", {"link": f"https://example.com/{BODY_MARK}"})
    send(client, "POST", "/link", {"link": "not a url"})
    client.http.get("/link/does-not-exist")
    client.http.get("/health", headers={"X-Secret": HEADER_MARK, **ADMIN})
    send(client, "POST", f"/docdb/blog/{collection}", {"note": BODY_MARK}, ADMIN)
    client.http.get(f"/docdb/blog/{collection}?{urlencode({'filter': json.dumps({'note': QUERY_MARK})})}",
                    headers=ADMIN)  # fmt: skip
    client.http.get(f"/docdb/blog/{collection}", headers=READER)
    return 7


def test_each_request_writes_one_json_line_with_every_field(client, lines, empty_tables, collection):
    count = _requests(client, collection)
    assert len(lines) == count, lines
    records = [json.loads(line) for line in lines]
    for record in records:
        assert set(record) == FIELDS, record
        assert record["type"] == "request"
        assert isinstance(record["status"], int) and isinstance(record["latency_ms"], (int, float))
        assert record["latency_ms"] >= 0 and record["request_id"]
        assert "\n" not in json.dumps(record)
    assert [(r["method"], r["route"], r["status"]) for r in records] == [
        ("POST", "/link", 201),
        ("POST", "/link", 400),
        ("GET", "/link/{link_id}", 404),
        ("GET", "/health", 200),
        ("POST", "/docdb/{db}/{collection}", 201),
        ("GET", "/docdb/{db}/{collection}", 200),
        ("GET", "/docdb/{db}/{collection}", 403),
    ]
    assert [r["principal"] for r in records] == [None, None, None, None, "apiuser", "apiuser", "reader"]
    assert records[4]["path"] == f"/docdb/blog/{collection}"
    assert len({r["request_id"] for r in records}) == count


def test_no_line_holds_a_credential_a_body_a_query_or_a_header(client, lines, empty_tables, collection):
    _requests(client, collection)
    text = "\n".join(lines)
    secrets = [password for password, _ in USERS.values()]
    secrets += [h["Authorization"].split(" ", 1)[1] for h in (ADMIN, READER)]
    for secret in [*secrets, BODY_MARK, QUERY_MARK, HEADER_MARK]:
        assert secret not in text


def test_a_500_line_and_its_message_carry_the_same_request_id(client, lines, monkeypatch, collection):
    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "get_collection_service", broken)
    response = client.http.get(f"/docdb/blog/{collection}", headers=ADMIN)
    assert response.status_code == 500
    [record] = [json.loads(line) for line in lines]
    assert record["status"] == 500
    assert record["request_id"] in body(response)["Message"]


def test_the_local_gateway_prints_one_json_line_per_request_on_stdout(stack, tmp_path):
    port = local_stack.free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [sys.executable, "-m", "tools.local_gateway", "--stage", "local", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ}, stdout=stdout, stderr=stderr)
        try:
            local_stack.wait_for_port(port, proc, "the local gateway", timeout=60)
            base = f"http://127.0.0.1:{port}"
            statuses = [
                requests.get(f"{base}/health", timeout=10).status_code,
                requests.get(f"{base}/docdb/blog/logs", headers=ADMIN, timeout=10).status_code,
                requests.post(f"{base}/link", json={"link": "nope"}, timeout=10).status_code,
            ]
            deadline = time.monotonic() + 10
            while out.read_text().count('"type": "request"') < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            local_stack.stop(proc)
    text = out.read_text()
    record_external_log(text + err.read_text(errors="replace"))
    # stdout also carries chalice's banner and library INFO lines (botocore's "Found credentials…"):
    # every request line is one whole JSON object, and no other line mentions a request.
    lines = text.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert not [line for line in lines if not line.startswith("{") and '"request_id"' in line]
    assert [r["status"] for r in records] == statuses == [200, 200, 400]
    assert all(set(r) == FIELDS for r in records)
    assert records[1]["principal"] == "apiuser"


def test_a_data_api_request_is_logged_with_the_user_its_key_belongs_to(client, stack, lines, collection):
    key = create_key(stack, "blogreader")
    response = data_api_action(client, "find", data_api_namespace(collection, "blog"), key)
    assert response.status_code == 200, response.body
    [record] = [json.loads(line) for line in lines]
    assert record["principal"] == "blogreader"
    assert key not in json.dumps(record)
