"""``GET /docs``: an interactive API reference (Swagger UI) over ``/openapi.json``.

Loaded the way FastAPI loads it: a pinned version of ``swagger-ui-dist``
from jsDelivr, each file checked by the browser against the subresource
integrity hash below, so a CDN that serves anything else fails closed.  A
stage can self-host the same two files instead (``DOCS_ASSETS_URL``: the base
URL they are served under); the hashes still apply, so only this exact
version works there too.

"Try it out" sends requests to the API the page was served from (its stage
prefix included) with the Basic credentials entered under "Authorize"; they
stay in the page's memory and are never stored.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from chalicelib import openapi

SWAGGER_UI_VERSION = "5.35.0"
CDN_BASE = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}/"
# sha384 of the files in swagger-ui-dist-5.35.0.tgz from the npm registry
# (tests/test_docs.py recomputes them from a fresh copy of the package).
ASSETS = {
    "swagger-ui-bundle.js": "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
    "swagger-ui.css": "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
}

# The spec and every "Try it out" request go to the API the page came from:
# /docs locally, /<stage>/docs behind API Gateway.
_INIT = """
const base = window.location.origin + window.location.pathname.replace(/\\/docs\\/?$/, "");
fetch(base + "/openapi.json")
  .then((response) => response.json())
  .then((spec) => {
    spec.servers = [{url: base, description: "this API"}];
    window.ui = SwaggerUIBundle({
      spec: spec,
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: false,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  });
""".strip()

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docdb-rest API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}" integrity="{css_sri}" crossorigin="anonymous">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{js}" integrity="{js_sri}" crossorigin="anonymous"></script>
<script>{init}</script>
</body>
</html>
"""


def assets_base(setting: str | None) -> str:
    """Where the two files come from: the stage's own copy, or the pinned CDN version."""
    if not setting:
        return CDN_BASE
    return setting if setting.endswith("/") else setting + "/"


def page(setting: str | None) -> str:
    base = assets_base(setting)
    return _PAGE.format(
        css=base + "swagger-ui.css",
        css_sri=ASSETS["swagger-ui.css"],
        js=base + "swagger-ui-bundle.js",
        js_sri=ASSETS["swagger-ui-bundle.js"],
        init=_INIT,
    )


def headers(setting: str | None) -> dict[str, str | list[str]]:
    """The page's headers: a policy that lets it load only the pinned files and call only this API."""
    base = assets_base(setting)
    # The files themselves, not their host: jsDelivr serves every npm package
    # and GitHub repository, so trusting its origin would let any injected
    # <script src> run.  A relative base can only be named as 'self'.
    script, style, folder = (
        (base + "swagger-ui-bundle.js", base + "swagger-ui.css", base) if urlsplit(base).netloc else ("'self'",) * 3
    )
    init_hash = base64.b64encode(hashlib.sha256(_INIT.encode()).digest()).decode()
    policy = "; ".join([
        "default-src 'none'",
        f"script-src {script} 'sha256-{init_hash}'",
        # Swagger UI sets style attributes as it renders.
        f"style-src {style} 'unsafe-inline'",
        f"img-src {folder} data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])  # fmt: skip
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def openapi_section() -> openapi.Section:
    """``GET /docs``."""
    return openapi.Section(
        paths={
            "/docs": {
                "get": {
                    "summary": "The interactive API reference (Swagger UI) over this document",
                    "operationId": "docs",
                    "responses": {
                        "200": {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
                    },
                }
            }
        }
    )
