"""`chalice local`, behaving like API Gateway where `chalice local` does not.

``make run`` (tools/local_stack.py) and the tests start this instead of
``chalice local``: the same app, stage and ``LocalDevServer``, with these
differences, each one a way the plain local server disagreed with the
deployed API:

* **Path parameters are URL-decoded**, once, as API Gateway decodes them
  (``/movies/John%20Smith`` is the name ``John Smith``; ``/docdb/blog/%24cmd``
  is the collection ``$cmd`` and refused).  ``requestContext.path`` keeps the
  path as sent, as API Gateway's REST APIs do.
* **Unknown routes and methods are a JSON 404** with a neutral body, like the
  ``MISSING_AUTHENTICATION_TOKEN`` gateway response in infra/resources.json
  (plain ``chalice local`` answers 403 and echoes the Authorization header).
* **Every error the gateway answers itself** (401, 403, 404, 503, the
  server's own 400/501) is JSON with the CORS headers, and a 401 carries
  ``WWW-Authenticate``, like the gateway responses deployed.  An authorizer
  that raises is AUTHORIZER_FAILURE's 503, not a dropped connection.
* **No Nagle stall on keep-alive connections**: ``TCP_NODELAY``, and headers
  and body leave in one buffered write.  Python's http.server writes them
  separately, and the body then waits for the client's delayed ACK (about
  40 ms per request on Linux).

Usage (the options of ``chalice local``)::

    python -m tools.local_gateway --stage local --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from chalice import local

ROOT = Path(__file__).resolve().parents[1]

# API Gateway's payload limit: a larger request is its 413, and never read here.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
NOT_FOUND_BODY = b'{"message":"Not Found: no route matches this method and path (see /docs)"}'


class NotFound(local.LocalGatewayException):
    CODE = 404


class BadPath(local.LocalGatewayException):
    CODE = 400


class AuthorizerFailure(local.LocalGatewayException):
    """An authorizer that raised: infra/resources.json's AUTHORIZER_FAILURE response."""

    CODE = 503


AUTHORIZER_FAILURE_BODY = b'{"message":"credentials cannot be checked right now; try again shortly"}'


def decode_segment(segment: str) -> str:
    """One path segment as API Gateway hands it to the function: percent-decoded UTF-8."""
    return unquote(segment, encoding="utf-8", errors="strict")


class DecodingRouteMatcher(local.RouteMatcher):
    """Chalice's matcher, comparing and capturing decoded segments."""

    def match_route(self, url: str) -> local.MatchResult:
        parsed = urlsplit(url)
        path = parsed.path
        if path != "/" and path.endswith("/"):
            path = path[:-1]  # API Gateway drops one trailing slash
        try:
            parts = [decode_segment(part) for part in path.split("/")]
        except UnicodeDecodeError:
            raise BadPath({}, b'{"message":"the path is not valid percent-encoded UTF-8"}') from None
        query = parse_qs(parsed.query, keep_blank_values=True)
        for route_url in self.route_urls:
            route_parts = route_url.split("/")
            if len(route_parts) != len(parts):
                continue
            captured: dict[str, str] = {}
            for actual, wanted in zip(parts, route_parts, strict=True):
                if wanted.startswith("{") and wanted.endswith("}"):
                    captured[wanted[1:-1]] = actual
                elif actual != wanted:
                    break
            else:
                return local.MatchResult(route_url, captured, query)
        raise ValueError("no matching route")


class FailingAuthorizerIs503(local.LocalGatewayAuthorizer):
    """An authorizer that crashes is API Gateway's AUTHORIZER_FAILURE, not a dropped connection."""

    def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        try:
            return super().authorize(raw_path, lambda_event, lambda_context)
        except local.LocalGatewayException:
            raise
        except Exception as exc:
            # The type only: the message of an error about the token may quote it.
            logging.getLogger(__name__).error("the authorizer raised %s", type(exc).__name__)
            raise AuthorizerFailure({"Retry-After": "5"}, AUTHORIZER_FAILURE_BODY) from None


class ApiGatewayLike(local.LocalGateway):
    """Chalice's LocalGateway with API Gateway's decoding, 404s and error headers."""

    def __init__(self, app_object: Any, config: Any) -> None:
        super().__init__(app_object, config)
        self.event_converter = local.LambdaEventConverter(
            DecodingRouteMatcher(list(app_object.routes)), app_object.api.binary_types
        )
        self._authorizer = FailingAuthorizerIs503(app_object)

    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        try:
            event = super()._generate_lambda_event(method, path, headers, body)
        except ValueError:
            raise NotFound({}, NOT_FOUND_BODY) from None
        methods = self._app_object.routes[event["requestContext"]["resourcePath"]]
        if method not in methods and method != "OPTIONS":
            # API Gateway has no method there: the same answer as no route.
            raise NotFound({}, NOT_FOUND_BODY)
        return event

    def handle_request(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        try:
            return super().handle_request(method, path, headers, body)
        except local.LocalGatewayException as exc:
            exc.headers = error_headers(exc.CODE, exc.headers)
            if not exc.body:
                exc.body = b'{"message":null}'
            raise


def error_headers(status: int, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the gateway responses add to an error the gateway answers itself."""
    from chalicelib.gateway import CHALLENGE
    from chalicelib.web import CORS

    merged = {"Content-Type": "application/json", **(headers or {}), **CORS.get_access_control_headers()}
    if status == 401:
        merged.setdefault("WWW-Authenticate", CHALLENGE)
    return merged


class GatewayRequestHandler(local.ChaliceRequestHandler):
    # One buffered write per response (flushed by http.server after each
    # request), so headers and body share a segment.
    wbufsize = 64 * 1024
    path: str  # the request target, as http.server parsed it

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
        self.local_gateway = ApiGatewayLike(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _generic_handle(self) -> None:
        """Chalice's handler, after the framing checks API Gateway makes before any function runs."""
        length = self.headers.get("Content-Length", "0").strip()
        if not (length.isascii() and length.isdigit()):
            # Chalice's int() raised on these and dropped the connection; a
            # negative length read nothing and passed the request on.
            self.send_error(400, "Content-Length must be a whole number of bytes")
            return
        if int(length) > MAX_PAYLOAD_BYTES:
            # Refused before reading, as API Gateway does; the connection closes,
            # so the unread body is never taken for the next request.
            self.send_error(413, f"the request is larger than API Gateway's {MAX_PAYLOAD_BYTES} byte limit")
            return
        if not self.path.startswith("/"):
            # An absolute-form target (GET http://host/path): API Gateway hands the
            # function the path only, so the host never reaches a Link header.
            parts = urlsplit(self.path)
            self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (malformed request, unknown method) as JSON, not HTML."""
        short = self.responses.get(code, ("error", ""))[0]
        self.log_error("code %d, message %s", code, message or short)
        body = json.dumps({"message": message or short}).encode()
        self.send_response(code, short)
        self.send_header("Connection", "close")
        for name, value in error_headers(code).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class GatewayServer(local.ThreadedHTTPServer):
    request_queue_size = 64  # a browser opens several connections at once


def create_server(app_obj: Any, config: Any, host: str, port: int) -> local.LocalDevServer:
    """What ``chalice.local.create_local_server`` builds, with this module's handler."""
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
    app_obj.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(
        app_obj, config, host, port, handler_cls=GatewayRequestHandler, server_cls=GatewayServer
    )


def main(argv: list[str] | None = None) -> None:
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--project-dir", default=str(ROOT))
    args = parser.parse_args(argv)
    # As `chalice local` does: the app's log lines on stdout, as Lambda shows them.
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    # environ=os.environ: the stage's variables go into this process, as `chalice local` does.
    factory = CLIFactory(project_dir=args.project_dir, environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=args.stage)
    app_obj = config.chalice_app
    validate_routes(app_obj.routes)
    server = create_server(app_obj, config, args.host, args.port)
    # Ctrl-C reaches the whole process group; make run says what it stopped.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
