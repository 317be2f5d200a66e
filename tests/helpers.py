"""Small helpers shared by the route tests."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from chalice.test import Client

JSON = {"Content-Type": "application/json"}
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


def body(response: Any) -> Any:
    return json.loads(response.body)


def send(client: Client, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> Any:
    data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
    return client.http.request(method, path, headers={**JSON, **(headers or {})}, body=data)


def get(client: Client, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
    if params:
        path = f"{path}?{urlencode(params)}"
    return client.http.get(path, headers=headers or {})


def next_url(response: Any) -> str | None:
    match = _NEXT.search(response.headers.get("link", "") or response.headers.get("Link", ""))
    return match.group(1) if match else None


def walk(client: Client, path: str, headers: dict[str, str] | None = None) -> tuple[list[Any], int]:
    """Follow rel="next" from ``path`` to the end: every item and the page count."""
    items: list[Any] = []
    pages = 0
    url: str | None = path
    while url is not None:
        response = client.http.get(url, headers=headers or {})
        assert response.status_code == 200, response.body
        items.extend(body(response))
        pages += 1
        url = next_url(response)
        assert pages < 10_000
    return items, pages
