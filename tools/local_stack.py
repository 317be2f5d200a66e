"""The local stack: moto's server (tools/moto_server.py), SecantusDB with TLS and SCRAM, and chalice local.

``make run`` calls :func:`main`.  The test suite and the benchmarks use the
same pieces (:class:`Moto`, :class:`Secantus`, :func:`seed`) so they run
against exactly what a developer runs.

Environment (all optional):

    API_PORT (8000)  MOTO_PORT (5000)  DOCDB_PORT (27018)  LOCAL_DIR (.local)
    DEV_API_USER (apiuser)  DEV_API_PASSWORD (apipassword)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REGION = "us-east-1"
# The local stage's names (.chalice/config.json); tests use the same ones.
LINKS_TABLE, MOVIES_TABLE, IDEMPOTENCY_TABLE = "links", "movies", "idempotency"
DOCDB_SECRET_ID, USERS_SECRET_ID = "local/docdb", "local/api-users"
DB_USER, DB_PASSWORD = "docdbuser", "docdbpassword"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(
    port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 30.0, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            from tools.run_guard import log_tail

            raise RuntimeError(
                f"{what} exited with status {proc.returncode} before listening on {port}.{log_tail(log)}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def aws_env(endpoint: str) -> dict[str, str]:
    """What botocore needs to talk to moto: the endpoint, a region, dummy keys."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@dataclass
class Moto:
    """moto's server (DynamoDB, Secrets Manager) on loopback.

    Started as ``python -m tools.moto_server``: moto's own server, with its
    TransactWriteItems made to cost the transaction's items and to roll back
    item by item, as DynamoDB's does, rather than copying and restoring
    whole tables, and its Scan made to cost the page rather than a sort and
    walk of the whole table (see tools/moto_server.py).
    """

    port: int
    proc: subprocess.Popen[Any] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Moto:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Its output is discarded: if it stops at once, that command run by hand says why.
        wait_for_port(self.port, self.proc, "moto (.venv/bin/python -m tools.moto_server)")
        return self

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class Secantus:
    """SecantusDB as DocumentDB runs: TLS from a local CA, SCRAM authentication.

    ``home`` keeps the CA, the server certificate and the data, so data and
    the database user survive restarts.
    """

    home: Path
    port: int
    user: str = DB_USER
    password: str = DB_PASSWORD
    proc: subprocess.Popen[Any] | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        return self.home / "ca.pem"

    @property
    def data_dir(self) -> Path:
        return self.home / "docdb-data"

    @property
    def log_file(self) -> Path:
        """Where the server's output goes: a file, never a pipe nobody reads (a full pipe hangs it)."""
        return self.home / "secantusd.log"

    def secret(self) -> dict[str, Any]:
        """The credentials secret in the shape DocumentDB manages."""
        return {
            "engine": "mongo",
            "username": self.user,
            "password": self.password,
            "host": "127.0.0.1",
            "port": self.port,
            "ssl": True,
        }

    def _certificates(self) -> None:
        import trustme

        self.home.mkdir(parents=True, exist_ok=True)
        if self.ca_file.exists() and (self.home / "server.pem").exists():
            return
        ca = trustme.CA(organization_name="docdb-rest local CA")
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(self.home / "server.key"))
        (self.home / "server.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))

    def _spawn(self, auth: bool) -> None:
        args = [
            str(BIN / "secantusd-py"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.data_dir),
            "--log-level", "ERROR",
            "--cache-size", "256M",
            "--tls-cert-file", str(self.home / "server.pem"),
            "--tls-key-file", str(self.home / "server.key"),
            *(["--auth"] if auth else []),
            *self.extra_args,
        ]  # fmt: skip
        # Start afresh once the log passes 10 MB; otherwise keep the previous runs' errors.
        mode = "wb" if self.log_file.exists() and self.log_file.stat().st_size > 10 * 2**20 else "ab"
        with self.log_file.open(mode) as log:
            log.write(f"--- secantusd-py on port {self.port}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, "secantusd-py", log=self.log_file)

    def client(self, **kwargs: Any) -> Any:
        from pymongo import MongoClient

        options = {"username": self.user, "password": self.password, **kwargs}
        return MongoClient(
            "127.0.0.1", self.port, tls=True, tlsCAFile=str(self.ca_file), retryWrites=False,
            serverSelectionTimeoutMS=5000, **{k: v for k, v in options.items() if v is not None},
        )  # fmt: skip

    def start(self) -> Secantus:
        self._certificates()
        marker = self.home / "docdb-user"
        if not marker.exists() or marker.read_text() != self.user:
            # A new data directory: create the user with auth off, as one would
            # bootstrap a server, then restart with SCRAM required.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._spawn(auth=False)
            with contextlib.closing(self.client(username=None, password=None)) as client:
                client.admin.command("createUser", self.user, pwd=self.password, roles=["root"])
            self.stop()
            marker.write_text(self.user)
        self._spawn(auth=True)
        return self

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


def seed(endpoint: str, secantus: Secantus, api_users: dict[str, tuple[str, list[str]]]) -> None:
    """Create the tables and secrets if missing, and (re)write both secrets."""
    import boto3

    from chalicelib.auth import hash_password
    from chalicelib.tables.schema import IDEMPOTENCY, LINKS, MOVIES

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    existing = set(dynamodb.list_tables()["TableNames"])
    for name, table in ((LINKS_TABLE, LINKS), (MOVIES_TABLE, MOVIES), (IDEMPOTENCY_TABLE, IDEMPOTENCY)):
        if name not in existing:
            dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **table.key_schema())
            if table.ttl:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl}
                )
    users = {
        name: {"password": hash_password(password), "grants": grants}
        for name, (password, grants) in api_users.items()
    }
    secrets = session.client("secretsmanager", endpoint_url=endpoint)
    for secret_id, value in ((DOCDB_SECRET_ID, secantus.secret()), (USERS_SECRET_ID, {"users": users})):
        put_secret(secrets, secret_id, value)


def put_secret(client: Any, secret_id: str, value: dict[str, Any]) -> None:
    text = json.dumps(value)
    try:
        client.put_secret_value(SecretId=secret_id, SecretString=text)
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=secret_id, SecretString=text)


def _pick_port(name: str, default: int) -> int:
    port = int(os.environ.get(name, default))
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is in use; set {name} to another port")
    return port


@contextlib.contextmanager
def backends(
    home: Path, moto_port: int, docdb_port: int, secantus_args: list[str] | None = None
) -> Iterator[tuple[Moto, Secantus]]:
    moto = Moto(moto_port).start()
    secantus = Secantus(home, docdb_port, extra_args=list(secantus_args or []))
    try:
        secantus.start()
        yield moto, secantus
    finally:
        secantus.stop()
        moto.stop()


def main() -> None:
    from tools import run_guard

    home = Path(os.environ.get("LOCAL_DIR", ROOT / ".local")).resolve()
    user = os.environ.get("DEV_API_USER", "apiuser")
    password = os.environ.get("DEV_API_PASSWORD", "apipassword")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))
    # Ctrl-C as KeyboardInterrupt even when started in the background (where SIGINT comes ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    # The lock first: a second `make run` on the same folder says who holds it, not which port is busy.
    with run_guard.data_dir_lock(home):
        api_port = _pick_port("API_PORT", 8000)
        moto_port = _pick_port("MOTO_PORT", 5000)
        docdb_port = _pick_port("DOCDB_PORT", 27018)
        try:
            with backends(home, moto_port, docdb_port) as (moto, secantus):
                _serve(moto, secantus, home, api_port, user, password)
        except KeyboardInterrupt:  # during start-up; _serve handles it once serving
            print("\nmake run (Ctrl-C): stopped while starting; nothing is left running.", flush=True)
        except RuntimeError as exc:  # a server that would not start: its own words, no traceback
            raise SystemExit(f"make run: {exc}") from None


def _serve(moto: Moto, secantus: Secantus, home: Path, api_port: int, user: str, password: str) -> None:
    from tools import run_guard

    seed(moto.endpoint, secantus, {user: (password, ["*/*:rw"])})
    env = {**os.environ, **aws_env(moto.endpoint), "DOCDB_CA_FILE": str(secantus.ca_file)}
    api = subprocess.Popen(
        # chalice local as API Gateway behaves (tools/local_gateway.py); no
        # autoreload, as SecantusDB writes its data under the project.
        [sys.executable, "-m", "tools.local_gateway", "--stage", "local",
         "--host", "127.0.0.1", "--port", str(api_port)],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    assert moto.proc is not None and secantus.proc is not None
    processes = [
        run_guard.Watched("moto", moto.proc),
        run_guard.Watched("SecantusDB", secantus.proc, secantus.log_file),
        run_guard.Watched("the local gateway", api),
    ]
    reason, dead = "start-up failed", None
    try:
        wait_for_port(api_port, api, "the local gateway", timeout=60)
        print(banner(api_port, api.pid, moto, secantus, home, user), flush=True)
        dead = run_guard.watch(processes)
        reason = f"{dead.name} stopped"
    except KeyboardInterrupt:
        reason = "Ctrl-C"
        print(flush=True)
    finally:
        run_guard.stop_all(processes, stop, reason, skip=dead)
    if dead is not None:
        raise SystemExit(1)


def banner(api_port: int, api_pid: int, moto: Moto, secantus: Secantus, home: Path, user: str) -> str:
    """What `make run` started and how to use it; never a password (they are in README or your environment)."""
    where = "README's \"Local ports and credentials\""
    who = "the one in $DEV_API_PASSWORD" if "DEV_API_PASSWORD" in os.environ else f"in {where}"
    base = f"http://127.0.0.1:{api_port}"
    moto_pid = moto.proc.pid if moto.proc else "?"
    docdb_pid = secantus.proc.pid if secantus.proc else "?"
    docdb_url = f"mongodb://{secantus.user}@127.0.0.1:{secantus.port}/?tls=true&tlsCAFile={secantus.ca_file}"
    return f"""
  API (the local gateway)               {base}   (pid {api_pid})
                                        user {user}, grants */*:rw; password: {who}
  DynamoDB and Secrets Manager (moto)   {moto.endpoint}   (pid {moto_pid})
  DocumentDB stand-in (SecantusDB)      {docdb_url}
                                        (pid {docdb_pid}; password in {where}; log {secantus.log_file})
  Data under {home}.  Ctrl-C stops everything; restart after changing code.

  Try:       curl -u {user} {base}/docdb/blog/test          (curl asks for the password)
  Add users: .venv/bin/python -m tools.users --local add NAME --grant 'blog/*:rw'   (applies at once)
"""


if __name__ == "__main__":
    main()
