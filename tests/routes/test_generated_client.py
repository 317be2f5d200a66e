"""A Python client generated from the served /openapi.json can query: filter, sort, projection, paging.

openapi-python-client (pinned in requirements-dev.txt, runs offline) builds a
client from what the local gateway serves at /openapi.json; the test imports it
and runs a filtered, sorted, projected find and a paged list of /link with it
against the local stack.  Generators skip query parameters declared with
``content``, so this fails if filter, projection or sort go back to that form.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from tests.support import USERS, local_gateway
from tools import local_stack

PACKAGE = "docdb_rest_client"
_NEXT = re.compile(r'<[^>]*[?&]next=([^&>]+)[^>]*>;\s*rel="next"')


@pytest.fixture(scope="module")
def api_url(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local gateway `make run` serves, on a free loopback port."""
    with local_gateway(tmp_path_factory.mktemp("generated-client-gateway")) as url:
        yield url


@pytest.fixture(scope="module")
def generated(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package openapi-python-client generates from the served document."""
    work = tmp_path_factory.mktemp("generated-client")
    (work / "openapi.json").write_text(requests.get(f"{api_url}/openapi.json", timeout=10).text)
    # No post hooks: the generator's default runs ruff over the output, which adds nothing here.
    (work / "config.yml").write_text("post_hooks: []\n")
    result = subprocess.run(
        [str(local_stack.BIN / "openapi-python-client"), "generate", "--path", "openapi.json",
         "--output-path", "out", "--config", "config.yml"],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(work / "out"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work / "out"))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _client(generated: ModuleType, api_url: str) -> Any:
    password = USERS["apiuser"][0]
    token = base64.b64encode(f"apiuser:{password}".encode()).decode()
    return generated.AuthenticatedClient(base_url=api_url, token=token, prefix="Basic")


def test_the_generated_find_takes_filter_projection_and_sort(generated):
    find = importlib.import_module(f"{PACKAGE}.api.docdb_any.get_docdb_any")
    names = find.sync_detailed.__code__.co_varnames
    assert {"filter_", "projection", "sort"} <= set(names), names


def test_a_generated_client_finds_filtered_sorted_projected(generated, api_url):
    insert = importlib.import_module(f"{PACKAGE}.api.docdb_any.post_docdb_any")
    find = importlib.import_module(f"{PACKAGE}.api.docdb_any.get_docdb_any")
    document = importlib.import_module(f"{PACKAGE}.models.document").Document
    collection = f"t_{uuid.uuid4().hex[:12]}"
    client = _client(generated, api_url)
    docs = [document.from_dict({"name": f"n{i}", "rating": i, "kind": "even" if i % 2 == 0 else "odd"})
            for i in range(6)]  # fmt: skip
    created = insert.sync_detailed("blog", collection, client=client, body=docs)
    assert created.status_code == 201, created.content

    found = find.sync_detailed(
        "blog", collection, client=client,
        filter_=json.dumps({"kind": "even"}), projection=json.dumps({"_id": 0, "name": 1}),
        sort=json.dumps([["rating", -1]]),
    )  # fmt: skip
    assert found.status_code == 200, found.content
    assert [d.to_dict() for d in found.parsed] == [{"name": "n4"}, {"name": "n2"}, {"name": "n0"}]


def test_a_generated_client_pages_through_links(generated, api_url, empty_tables):
    create = importlib.import_module(f"{PACKAGE}.api.default.create_link")
    list_links = importlib.import_module(f"{PACKAGE}.api.default.list_links")
    body_model = importlib.import_module(f"{PACKAGE}.models.create_link_body").CreateLinkBody
    client = generated.Client(base_url=api_url)
    stored = set()
    for i in range(5):
        response = create.sync_detailed(client=client, body=body_model(link=f"https://example.com/{i}"))
        assert response.status_code == 201, response.content
        stored.add(response.parsed.link_id)

    seen: list[str] = []
    pages = 0
    next_token: Any = None
    while True:
        kwargs = {"next_": next_token} if next_token else {}
        page = list_links.sync_detailed(client=client, limit=2, **kwargs)
        assert page.status_code == 200, page.content
        seen.extend(link.link_id for link in page.parsed)
        pages += 1
        match = _NEXT.search(page.headers.get("link", ""))
        if match is None:
            break
        next_token = unquote(match.group(1))
        assert pages < 10
    assert sorted(seen) == sorted(stored)
    assert pages >= 3
