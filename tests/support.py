"""What the tests share: handles on the local stack, request helpers, fault injectors.

- :class:`Stack`: the running moto and SecantusDB servers, with direct clients
  to check what the API stored.
- ``send``/``get``/``walk``: requests through ``chalice.test.Client``.
- :class:`Proxy`: a loopback TCP proxy that refuses, cuts or loses replies.
- :class:`ThrottlingDynamo`: a DynamoDB stub that throttles, then forwards to moto.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import http.server
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
from chalice.test import Client

from chalicelib import docs
from chalicelib.tables.schema import LINKS, MOVIES
from tools import local_stack
from tools.lambda_runtime import proxy_event, token_event  # noqa: F401  (shared by the tests)

ROOT = Path(__file__).resolve().parents[1]

USERS = {
    "apiuser": ("apipassword", ["*/*:rw"]),
    "reader": ("readerpass", ["demodb/democollection:r"]),
    "demowriter": ("demowriterpass", ["demodb/*:rw"]),
    "blogreader": ("blogreaderpass", ["blog/*:r", "shared/notes:rw"]),
}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("apiuser", "apipassword")


class Stack:
    """Handles on the running backends, for tests that inspect or break them."""

    def __init__(self, moto: local_stack.Moto, secantus: local_stack.Secantus) -> None:
        self.moto = moto
        self.secantus = secantus
        session = boto3.session.Session(
            region_name=local_stack.REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.dynamodb = session.client("dynamodb", endpoint_url=moto.endpoint)
        self.secrets = session.client("secretsmanager", endpoint_url=moto.endpoint)
        self._mongo: Any = None

    @property
    def mongo(self) -> Any:
        """A direct pymongo client, to check what the API stored."""
        if self._mongo is None:
            self._mongo = self.secantus.client()
        return self._mongo

    def seed(self) -> None:
        local_stack.seed(self.moto.endpoint, self.secantus, USERS)

    def empty_tables(self) -> None:
        for table, key in ((local_stack.LINKS_TABLE, LINKS.key), (local_stack.MOVIES_TABLE, MOVIES.key)):
            kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "#k",
                                      "ExpressionAttributeNames": {"#k": key}}
            while True:
                page = self.dynamodb.scan(**kwargs)
                for item in page["Items"]:
                    self.dynamodb.delete_item(TableName=table, Key=item)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- requests through the test client ----------------------------------------


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


LIFETIME_S = 120  # no helper thread outlives this, whatever a test does
OP_MSG = 2013
MORE_TO_COME = 2


# --- a TCP proxy to break connections with ------------------------------------


APP_NAME = "docdb-rest"  # the appname build_client gives the app's MongoClient


@contextlib.contextmanager
def commands_fail(mongo: Any, commands: list[str], code: int, labels: tuple[str, ...] = (),
                  mode: Any = None) -> Iterator[None]:  # fmt: skip
    """The app's next ``commands`` (once, or as ``mode`` says) fail with ``code``: SecantusDB's failCommand."""
    data: dict[str, Any] = {"failCommands": commands, "errorCode": code, "appName": APP_NAME}
    if labels:
        data["errorLabels"] = list(labels)
    mongo.admin.command("configureFailPoint", "failCommand", mode=mode or {"times": 1}, data=data)
    try:
        yield
    finally:
        mongo.admin.command("configureFailPoint", "failCommand", mode="off")


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_message(sock: socket.socket) -> bytes | None:
    """One MongoDB wire-protocol message (its 4-byte little-endian length first)."""
    header = _read_exact(sock, 4)
    if header is None:
        return None
    rest = _read_exact(sock, int.from_bytes(header, "little") - 4)
    return None if rest is None else header + rest


def _command(message: bytes) -> str | None:
    """The command an OP_MSG carries: the first key of its body section."""
    import bson

    if int.from_bytes(message[12:16], "little") != OP_MSG or message[20] != 0:
        return None
    size = int.from_bytes(message[21:25], "little")
    return next(iter(bson.decode(message[21 : 21 + size])), None)


def _more_to_come(message: bytes) -> bool:
    return int.from_bytes(message[12:16], "little") == OP_MSG and bool(message[16] & MORE_TO_COME)


class Proxy:
    """Forwards loopback connections to ``upstream_port``, and breaks them on request.

    Plain mode copies bytes both ways (TLS from the client passes through
    untouched).  With ``upstream_tls`` the client speaks plain MongoDB wire
    protocol to the proxy and the proxy speaks TLS to the server, so it can
    see which command a message carries and lose exactly one reply.
    """

    def __init__(self, upstream_port: int, upstream_tls: ssl.SSLContext | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = local_stack.free_port()
        self._tls = upstream_tls
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._lose: dict[str, int] = {}  # command -> how many more of its replies to lose
        self.lost: list[str] = []  # commands the server answered but whose reply was dropped
        self._stall: set[str] = set()
        self.stalled: list[str] = []  # commands left unanswered until release()
        self._released = threading.Event()
        self._deadline = time.monotonic() + LIFETIME_S

    def start(self) -> Proxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.sever()

    def sever(self) -> None:
        """Cut every open connection, as a network blip or a failover would."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def lose_reply_to(self, command: str, times: int = 1) -> None:
        """Forward the next ``times`` ``command``s to the server, then drop each reply and its connection."""
        self._lose[command] = self._lose.get(command, 0) + times

    def keep_replies(self) -> None:
        """Stop losing replies."""
        self._lose.clear()

    def stall(self, command: str) -> None:
        """Forward the next ``command``, then answer nothing on that connection until release()."""
        self._released.clear()
        self._stall.add(command)

    def release(self) -> None:
        """Cut the stalled connections."""
        self._released.set()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener and time.monotonic() < self._deadline:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                if self._tls is not None:
                    upstream = self._tls.wrap_socket(upstream, server_hostname="127.0.0.1")
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(LIFETIME_S)
            with self._lock:
                self._sockets |= {client, upstream}
            if self._tls is None:
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()
            else:
                threading.Thread(target=self._relay_messages, args=(client, upstream), daemon=True).start()

    def _close(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets -= set(sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(1 << 16):
                dst.sendall(chunk)
        self._close(src, dst)

    def _relay_messages(self, client: socket.socket, upstream: socket.socket) -> None:
        # The driver waits for each reply before it sends again, so one
        # thread relays request, then reply(s), in turn.
        with contextlib.suppress(OSError):
            while (request := _read_message(client)) is not None:
                command = _command(request)
                upstream.sendall(request)
                if _more_to_come(request):
                    continue
                if command in self._stall:
                    self._stall.discard(command)
                    self.stalled.append(command)
                    self._released.wait(LIFETIME_S)
                    break
                while (reply := _read_message(upstream)) is not None:
                    if command is not None and self._lose.get(command):
                        self._lose[command] -= 1
                        self.lost.append(command)
                        self._close(client, upstream)
                        return
                    client.sendall(reply)
                    if not _more_to_come(reply):
                        break
                else:
                    break
        self._close(client, upstream)


# --- a DynamoDB stub that throttles, then hands over to moto ------------------


@contextlib.contextmanager
def dynamodb_through(stub: Any, monkeypatch: Any) -> Iterator[Any]:
    """Serve ``stub`` (an HTTP server in front of moto) and aim the app's DynamoDB clients at it; stop it after."""
    threading.Thread(target=stub.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", stub.url)
        yield stub
    finally:
        stub.shutdown()
        stub.server_close()


class ThrottlingDynamo(http.server.ThreadingHTTPServer):
    """Answers the next ``throttles`` DynamoDB calls with ``code``, forwards the rest to moto."""

    daemon_threads = True

    def __init__(self, moto_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _ThrottlingHandler)
        self.moto_port = moto_port
        self.code = "ProvisionedThroughputExceededException"
        self.throttles = 0
        self.attempts: list[str] = []  # X-Amz-Target of every call received

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ThrottlingHandler(http.server.BaseHTTPRequestHandler):
    server: ThrottlingDynamo

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.attempts.append(self.headers.get("X-Amz-Target", ""))
        if self.server.throttles > 0:
            self.server.throttles -= 1
            reply = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{self.server.code}",
                                "message": "Rate of requests exceeds the allowed throughput."}).encode()
            self._answer(400, {"Content-Type": "application/x-amz-json-1.0"}, reply)
            return
        moto = http.client.HTTPConnection("127.0.0.1", self.server.moto_port, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            moto.request("POST", self.path, payload, headers)
            answer = moto.getresponse()
            skip = ("content-length", "transfer-encoding", "connection", "date", "server")
            self._answer(answer.status, {k: v for k, v in answer.getheaders() if k.lower() not in skip},
                         answer.read())
        finally:
            moto.close()

    def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


# --- a collection service whose driver reports every command it sends ----------


class FixedSecret:
    """A secret source that always answers the same secret (no Secrets Manager)."""

    def __init__(self, secret: dict[str, Any]) -> None:
        self._secret = secret

    def get_json(self, _secret_id: str) -> dict[str, Any]:
        return self._secret

    def invalidate(self, _secret_id: str) -> None:
        pass


def watched_connection(stack: Stack, commands: list[dict[str, Any]]) -> Any:
    """A DocdbConnection to the stack whose client appends every command it starts to ``commands``."""
    from pymongo import monitoring

    from chalicelib.docdb.client import DocdbConnection

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            commands.append(dict(event.command))

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    def factory(_secret: dict[str, Any], _ca: str, _pool: int) -> Any:
        return stack.secantus.client(event_listeners=[Listener()])

    return DocdbConnection(FixedSecret(stack.secantus.secret()), local_stack.DOCDB_SECRET_ID, "", 1, factory)


# --- suite-wide log capture ---------------------------------------------------
# Every log record of the session (and what `chalice local` printed in
# tests/routes/test_fuzz.py) is kept, so tests/test_logs.py, which runs last, can
# assert that no password or Authorization header value ever reached a log.



class _KeepEveryRecord(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(self.format(record))
        except Exception:  # a record whose arguments do not format: keep its parts
            self.messages.append(f"{record.msg!r} {record.args!r}")


LOG_CAPTURE = _KeepEveryRecord()


def record_external_log(text: str) -> None:
    """Add another process's log output to what tests/test_logs.py checks."""
    LOG_CAPTURE.messages.extend(text.splitlines())


# --- the local gateway as `make run` starts it ----------------------------------


@contextlib.contextmanager
def local_gateway(log_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the app on a free loopback port with the session stack's environment; yield its base URL."""
    port = local_stack.free_port()
    log_path = log_dir / f"gateway-{port}.log"
    command = [sys.executable, "-m", "tools.local_gateway", "--stage", "local", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(extra_env or {})}, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            local_stack.wait_for_port(port, proc, "the local gateway", timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            local_stack.stop(proc)
    # What the server logged goes through the suite's credential check (tests/test_logs.py).
    record_external_log(log_path.read_text(errors="replace"))


# --- a local copy of the pinned swagger-ui-dist (fetched once with npm into build/) --
# The /docs tests check the hashes in chalicelib/docs.py against it, and the
# browser tests answer the page's CDN requests from it, so no test needs the CDN.


CACHE = ROOT / "build" / f"swagger-ui-dist-{docs.SWAGGER_UI_VERSION}"


def swagger_ui_dist() -> Path:
    """The package's files (``CACHE/package/…``), downloaded from the npm registry on first use."""
    package = CACHE / "package"
    if (package / "package.json").exists():
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch swagger-ui-dist for the /docs tests (apt-get install npm)")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as tmp:
        # `npm pack` checks the tarball against the registry's integrity hash.
        subprocess.run([npm, "pack", f"swagger-ui-dist@{docs.SWAGGER_UI_VERSION}", "--silent"], cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL, timeout=300)  # fmt: skip
        (tarball,) = Path(tmp).glob("swagger-ui-dist-*.tgz")
        with tarfile.open(tarball) as archive:
            archive.extractall(tmp, filter="data")
        staged = Path(tmp) / "staged"
        staged.mkdir()
        (Path(tmp) / "package").rename(staged / "package")
        with contextlib.suppress(OSError):  # another run got there first
            staged.rename(CACHE)
    return package


# --- the Data API: keys for the suite's users, requests shaped like its docs' curl ---


SNIPPET_PREFIX = "/app/data-abcde/endpoint/data/v1"
EJSON = "application/ejson"


def create_key(stack: Stack, user: str, label: str | None = None) -> str:
    """A new API key for ``user`` in the app's users secret, made by the user command's own code."""
    from tools import users as users_tool

    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    message = users_tool.apply(value, argparse.Namespace(command="create-key", name=user, label=label))
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    forget_secrets()
    return message.splitlines()[-1]


def revoke_key(stack: Stack, key: str) -> None:
    from tools import users as users_tool

    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    users_tool.apply(value, argparse.Namespace(command="revoke-key", key_id=key.split(".")[0]))
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    forget_secrets()


def forget_secrets() -> None:
    """What the secret's TTL does in a warm container: the next request re-reads it."""
    import app as app_module

    # Only a loader the app built itself: building one here would cache the
    # settings outside a request, before the stage's environment is set.
    if app_module.deps.secrets is None:
        app_module.deps.reset()
    else:
        app_module.deps.secrets.invalidate(local_stack.USERS_SECRET_ID)


def keys_for_every_user(stack: Stack) -> dict[str, str]:
    return {name: create_key(stack, name) for name in USERS}


def data_api_action(
    client: Client,
    name: str,
    body: Any,
    key: str | None = None,
    *,
    content_type: str | None = EJSON,
    accept: str | None = "application/json",
    prefix: str = SNIPPET_PREFIX,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Any:
    """POST one action as the docs' snippets do: apiKey, Content-Type ejson, Accept json."""
    sent: dict[str, str] = {}
    if key is not None:
        sent["apiKey"] = key
    if content_type is not None:
        sent["Content-Type"] = content_type
    if accept is not None:
        sent["Accept"] = accept
    sent.update(headers or {})
    data = raw if raw is not None else json.dumps(body).encode()
    return client.http.post(f"{prefix}/action/{name}", headers=sent, body=data)


def data_api_namespace(collection: str, database: str = "learn-data-api") -> dict[str, str]:
    return {"dataSource": "mongodb-atlas", "database": database, "collection": collection}


def content_type(response: Any) -> str:
    return (response.headers.get("Content-Type") or response.headers.get("content-type") or "").split(";")[0]
