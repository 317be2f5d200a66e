"""A local stand-in for the AWS Parameters and Secrets Lambda Extension, serving secrets from moto.

    python -m tools.secrets_extension --endpoint http://127.0.0.1:5000 [--port 2773] [--token TOKEN]

It speaks the extension's protocol, as AWS documents it and as AWS's open
source Secrets Manager Agent (the same "Lambda extension style" endpoint)
implements it:

- ``GET /secretsmanager/get?secretId=ID`` (optionally ``versionId``,
  ``versionStage``) answers 200 with GetSecretValue's JSON (``ARN``, ``Name``,
  ``VersionId``, ``SecretString``, ``VersionStages``, ``CreatedDate``);
- the header ``X-Aws-Parameters-Secrets-Token`` must carry the function's
  ``AWS_SESSION_TOKEN``, else 403; a request with ``X-Forwarded-For`` is a
  400 (the extension serves only its own container);
- a missing ``secretId`` or an unknown parameter is a 400, another path a
  404, another method a 405;
- Secrets Manager's refusals pass through with its status and
  ``{"__type": code, "message": …}`` (a missing secret is a 400
  ``ResourceNotFoundException``), Secrets Manager unreachable is a 502, too
  slow a 504, anything else a 500.

It caches nothing, as the stages run the real extension (its cache off, so
a secret re-read after a rotation is really re-read).  ``GET /ping`` answers
``healthy`` without a token, for waiting until it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
QUERY_PARAMETERS = {"secretId": "SecretId", "versionId": "VersionId", "versionStage": "VersionStage"}


def secrets_client(endpoint: str, region: str = "us-east-1") -> Any:
    """A botocore Secrets Manager client for ``endpoint`` (moto), as the extension holds one."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=2, read_timeout=5),
    )


class _Handler(BaseHTTPRequestHandler):
    server: SecretsExtension
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests carry the session token in a header; never log them

    def _answer(self, status: int, body: bytes | str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if data[:1] == b"{" else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.requests += 1
        url = urlsplit(self.path)
        if url.path == "/ping":
            return self._answer(200, "healthy")
        if "X-Forwarded-For" in self.headers:
            return self._answer(400, "Forwarded")
        token = self.headers.get(TOKEN_HEADER)
        if not token or not hmac.compare_digest(token.encode(), self.server.token.encode()):
            return self._answer(403, "Bad Token")
        if url.path != "/secretsmanager/get":
            return self._answer(404, "Not found")
        kwargs: dict[str, str] = {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            if name not in QUERY_PARAMETERS:
                return self._answer(400, f"unknown parameter: {name}")
            kwargs[QUERY_PARAMETERS[name]] = value
        if not kwargs.get("SecretId"):
            return self._answer(400, "missing parameter secretId")
        status, body = self.server.get_secret_value(kwargs)
        self._answer(status, body)

    def _refuse_method(self) -> None:
        self._answer(405, "Not allowed")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _refuse_method


class SecretsExtension(ThreadingHTTPServer):
    """The stand-in on ``127.0.0.1:port`` (0: a free port), reading secrets from ``endpoint``."""

    daemon_threads = True

    def __init__(self, endpoint: str, token: str, port: int = 0, region: str = "us-east-1") -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.token = token
        self.requests = 0
        self._client = secrets_client(endpoint, region)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_secret_value(self, kwargs: dict[str, str]) -> tuple[int, str]:
        from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

        try:
            response = self._client.get_secret_value(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            return status, json.dumps({"__type": error.get("Code", ""), "message": error.get("Message", "")})
        except (ConnectTimeoutError, ReadTimeoutError):
            return 504, json.dumps({"__type": "TimeoutError", "message": "Timeout"})
        except EndpointConnectionError:
            return 502, json.dumps({"__type": "ConnectionError", "message": "Read Error"})
        except Exception:  # the extension's own failure
            return 500, json.dumps({"__type": "InternalFailure", "message": ""})
        body = {k: response[k] for k in ("ARN", "Name", "VersionId", "SecretString", "SecretBinary") if k in response}
        body["VersionStages"] = response.get("VersionStages", [])
        if "CreatedDate" in response:
            body["CreatedDate"] = response["CreatedDate"].timestamp()
        if "SecretBinary" in body:
            import base64

            body["SecretBinary"] = base64.b64encode(body["SecretBinary"]).decode()
        return 200, json.dumps(body)


@contextlib.contextmanager
def running(endpoint: str, token: str, port: int = 0) -> Iterator[SecretsExtension]:
    """The stand-in serving in a background thread until the block ends."""
    server = SecretsExtension(endpoint, token, port)
    thread = threading.Thread(target=server.serve_forever, name="secrets-extension", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.secrets_extension", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="moto's URL (Secrets Manager)")
    parser.add_argument("--port", type=int, default=2773, help="port to listen on (default 2773, as the extension)")
    parser.add_argument("--token", default="local-session-token", help="the AWS_SESSION_TOKEN callers must send")
    args = parser.parse_args(argv)
    server = SecretsExtension(args.endpoint, args.token, args.port)
    print(f"secrets extension stand-in on http://127.0.0.1:{server.port} (Secrets Manager at {args.endpoint})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
