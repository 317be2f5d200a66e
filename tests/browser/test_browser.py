"""A browser app on another origin, driven in headless Chromium against `make run`'s local gateway.

A page served by a second small HTTP server (another port, so another
origin) calls the API with fetch(): what a browser app can do is what CORS
lets it read, so every assertion here is about what the page itself saw.
The /docs page loads Swagger UI with its CDN requests answered from the
locally installed copy of the pinned package (nothing leaves the machine),
and its "Try it out" runs a request with Basic credentials.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from chalicelib import docs
from tests.browser.conftest import CHROMIUM
from tests.support import ROOT, local_gateway, swagger_ui_dist
from tools import local_stack

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = ROOT / "build" / "browser"
PAGE = b"<!doctype html><html><head><meta charset='utf-8'><title>a browser app</title></head><body>app</body></html>"


@pytest.fixture(scope="module")
def api_url(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_gateway(tmp_path_factory.mktemp("browser-gateway")) as url:
        yield url


@pytest.fixture(scope="module")
def broken_api_url(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same app with DynamoDB unreachable (nothing listens at its endpoint): a real 503."""
    dead = f"http://127.0.0.1:{local_stack.free_port()}"
    with local_gateway(tmp_path_factory.mktemp("browser-broken"), {"AWS_ENDPOINT_URL": dead}) as url:
        yield url


@pytest.fixture(scope="module")
def app_origin() -> Iterator[str]:
    """A second server, on another port: the browser app's own origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Offline:
    """Refuses every request that would leave the machine, and remembers it."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()


@pytest.fixture
def page(browser: Any, app_origin: str) -> Iterator[Any]:
    context = browser.new_context()
    offline = Offline()
    context.route("**/*", offline)
    page = context.new_page()
    page.goto(app_origin)
    try:
        yield page
    finally:
        context.close()
    assert not offline.refused, f"the page tried to reach the network: {offline.refused}"


def test_page_posts_links_and_follows_link_headers_to_the_end(page: Any, api_url: str, empty_tables: Any) -> None:
    result = page.evaluate(
        """async (api) => {
            const created = [];
            for (let i = 0; i < 5; i++) {
                const r = await fetch(api + "/link", {method: "POST", headers: {"Content-Type": "application/json"},
                                                      body: JSON.stringify({link: "https://example.com/b/" + i})});
                created.push({status: r.status, location: r.headers.get("Location"), id: (await r.json()).link_id});
            }
            const seen = [];
            let url = api + "/link?limit=2", pages = 0;
            while (url && pages < 50) {
                const r = await fetch(url);
                pages++;
                if (r.status !== 200) return {error: r.status};
                seen.push(...(await r.json()).map((item) => item.link_id));
                const next = (r.headers.get("Link") || "").match(/<([^>]+)>;\\s*rel="next"/);
                url = next ? new URL(next[1], api).href : null;
            }
            return {created, seen, pages};
        }""",
        api_url,
    )
    assert "error" not in result, result
    for link in result["created"]:
        assert link["status"] == 201
        assert link["location"] == f"/link/{link['id']}"
    assert sorted(result["seen"]) == sorted(link["id"] for link in result["created"])
    assert result["pages"] == 3  # 2 + 2 + 1: the page saw every Link header


def test_page_puts_and_gets_a_movie(page: Any, api_url: str) -> None:
    result = page.evaluate(
        """async (api) => {
            const put = await fetch(api + "/movies/John%20Smith", {method: "PUT",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify({favorite_movie: "Heat"})});
            const get = await fetch(api + "/movies/John%20Smith");
            return {put: put.status, get: get.status, body: await get.json()};
        }""",
        api_url,
    )
    assert result == {"put": 200, "get": 200, "body": {"name": "John Smith", "favorite_movie": "Heat"}}


def test_page_writes_and_reads_a_collection_with_basic_auth(page: Any, api_url: str) -> None:
    collection = f"b_{uuid.uuid4().hex[:10]}"
    result = page.evaluate(
        """async ([api, collection]) => {
            const auth = {"Authorization": "Basic " + btoa("apiuser:apipassword"), "Content-Type": "application/json"};
            const url = api + "/docdb/blog/" + collection;
            const post = await fetch(url, {method: "POST", headers: auth,
                body: JSON.stringify([{name: "brian", rating: 5}, {name: "jason", rating: 3}])});
            const get = await fetch(url + "?count=true&limit=1&sort=" + encodeURIComponent('{"rating": -1}'),
                                    {headers: auth});
            return {post: post.status, get: get.status, total: get.headers.get("X-Total-Count"),
                    link: get.headers.get("Link"), body: await get.json()};
        }""",
        [api_url, collection],
    )
    assert result["post"] == 201 and result["get"] == 200
    assert result["total"] == "2"
    assert result["link"] and 'rel="next"' in result["link"]
    assert [doc["name"] for doc in result["body"]] == ["brian"]


def test_page_reads_a_401_and_its_challenge(page: Any, api_url: str) -> None:
    result = page.evaluate(
        """async (api) => {
            const r = await fetch(api + "/docdb/blog/test",
                                  {headers: {"Authorization": "Basic " + btoa("apiuser:wrong")}});
            return {status: r.status, challenge: r.headers.get("WWW-Authenticate"), body: await r.json()};
        }""",
        api_url,
    )
    assert result["status"] == 401
    assert result["challenge"].startswith("Basic realm=")
    assert result["body"] == {"message": "Unauthorized"}


def test_page_reads_an_unknown_route_as_a_404(page: Any, api_url: str) -> None:
    result = page.evaluate(
        """async (api) => {
            const auth = {"Authorization": "Basic " + btoa("apiuser:apipassword")};
            const r = await fetch(api + "/no/such/route", {headers: auth});
            return {status: r.status, body: await r.text()};
        }""",
        api_url,
    )
    assert result["status"] == 404
    assert "YXBpdXNlcjphcGlwYXNzd29yZA" not in result["body"]  # base64 of apiuser:apipassword


def test_page_reads_a_503s_retry_after(page: Any, broken_api_url: str) -> None:
    result = page.evaluate(
        """async (api) => {
            const r = await fetch(api + "/link");
            return {status: r.status, retryAfter: r.headers.get("Retry-After"), body: await r.json()};
        }""",
        broken_api_url,
    )
    assert result["status"] == 503
    assert result["retryAfter"] is not None and int(result["retryAfter"]) > 0
    assert result["body"]["Code"] == "ServiceUnavailableError"


# --- /docs ------------------------------------------------------------------------------


def serve_cdn_from_local_copy(context: Any) -> list[str]:
    """Answer the page's jsDelivr requests from the pinned package installed by npm."""
    package = swagger_ui_dist()
    served: list[str] = []

    def fulfill(route: Any) -> None:
        name = route.request.url.removeprefix(docs.CDN_BASE)
        path = package / name
        if name not in docs.ASSETS or not path.exists():
            route.abort()
            return
        served.append(name)
        content_type = "text/css" if name.endswith(".css") else "application/javascript"
        route.fulfill(path=str(path), content_type=content_type, headers={"Access-Control-Allow-Origin": "*"})

    context.route(docs.CDN_BASE + "**", fulfill)
    return served


def test_docs_try_it_out_calls_the_api_with_basic_auth(browser: Any, api_url: str, stack: Any) -> None:
    stack.mongo.demodb.democollection.replace_one(
        {"_id": "from-the-browser-test"}, {"name": "brian", "rating": 5}, upsert=True
    )
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    offline = Offline()
    context.route("**/*", offline)
    served = serve_cdn_from_local_copy(context)  # registered last, so it is asked first
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sent: list[dict[str, str]] = []
    page.on("request", lambda r: sent.append(r.headers) if "/docdb/demodb/democollection?" in r.url else None)
    try:
        page.goto(f"{api_url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "docdb-rest" in page.inner_text(".swagger-ui .info .title")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "docs.png"))

        page.click(".scheme-container button.authorize")
        page.fill(".auth-container input[type=text]", "apiuser")
        page.fill(".auth-container input[type=password]", "apipassword")
        page.click(".auth-btn-wrapper button.authorize")
        page.click(".auth-btn-wrapper button.btn-done")

        path = page.locator(".opblock-summary-path[data-path='/docdb/demodb/democollection']")
        operation = page.locator(".opblock-get", has=path)
        operation.locator(".opblock-summary").first.click()
        operation.locator("button.try-out__btn").click()
        # Swagger UI fills JSON parameters with {"additionalProp1": {}}: what a user clears or edits first.
        operation.locator("tr[data-param-name='filter'] textarea").fill('{"rating": {"$gte": 0}}')
        operation.locator("tr[data-param-name='projection'] textarea").fill("")
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=30_000)
        assert status.inner_text().strip() == "200"
        assert "from-the-browser-test" in operation.locator(".live-responses-table").inner_text()
        status.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "docs-try-it-out.png"))
    finally:
        context.close()
    assert sorted(set(served)) == sorted(docs.ASSETS)
    assert not offline.refused, offline.refused
    assert not errors, errors
    assert sent and sent[-1].get("authorization", "").startswith("Basic ")

