"""GET /docs: Swagger UI pinned by version and subresource integrity, or self-hosted by the stage."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from chalicelib import docs
from tests.support import swagger_ui_dist


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@pytest.mark.parametrize("name", sorted(docs.ASSETS))
def test_integrity_hashes_match_the_pinned_package(name: str) -> None:
    package = swagger_ui_dist()
    assert json.loads((package / "package.json").read_text())["version"] == docs.SWAGGER_UI_VERSION
    assert docs.ASSETS[name] == sri((package / name).read_bytes())


def test_docs_page_loads_the_pinned_version_from_the_cdn_with_integrity(client: Any) -> None:
    response = client.http.get("/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    for name, digest in docs.ASSETS.items():
        url = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{docs.SWAGGER_UI_VERSION}/{name}"
        assert re.search(rf'"{re.escape(url)}" integrity="{re.escape(digest)}" crossorigin="anonymous"', html), name
    policy = response.headers["Content-Security-Policy"]
    assert f"script-src https://cdn.jsdelivr.net/npm/swagger-ui-dist@{docs.SWAGGER_UI_VERSION}/swagger-ui-bundle.js " \
        "'sha256-" in policy
    assert "connect-src 'self'" in policy


def test_docs_page_needs_no_credentials_and_carries_cors(client: Any) -> None:
    response = client.http.get("/docs")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("setting", ["https://static.example.com/swagger-ui", "/assets/swagger-ui/"])
def test_a_stage_can_self_host_the_assets(client: Any, monkeypatch: pytest.MonkeyPatch, fresh_app: None,
                                          setting: str) -> None:  # fmt: skip
    monkeypatch.setenv("DOCS_ASSETS_URL", setting)
    response = client.http.get("/docs")
    html = response.body.decode()
    base = setting.rstrip("/") + "/"
    assert "cdn.jsdelivr.net" not in html and "cdn.jsdelivr.net" not in response.headers["Content-Security-Policy"]
    for name, digest in docs.ASSETS.items():
        assert f'"{base}{name}" integrity="{digest}"' in html


def test_the_inline_script_is_the_one_the_policy_allows() -> None:
    html = docs.page(None)
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in docs.headers(None)["Content-Security-Policy"]


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in policy.split(";"))}


@pytest.mark.parametrize("setting", [None, "https://static.example.com/swagger-ui/"])
def test_the_policy_allows_the_two_pinned_files_not_every_file_their_host_serves(setting: str | None) -> None:
    """jsDelivr serves every npm package and GitHub repository: trusting its origin would let any
    injected <script src> run, integrity attribute or not."""
    base = docs.assets_base(setting)
    policy = _directives(str(docs.headers(setting)["Content-Security-Policy"]))
    assert [s for s in policy["script-src"] if not s.startswith("'sha256-")] == [base + "swagger-ui-bundle.js"]
    assert [s for s in policy["style-src"] if s != "'unsafe-inline'"] == [base + "swagger-ui.css"]
    assert policy["img-src"] == [base, "data:"]
