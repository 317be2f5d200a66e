"""`make run` (tools/local_stack.py) as a newcomer meets it: it never wedges, never prints a password,
says who holds its folder, stops when a server dies, and says what Ctrl-C stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bson
import pytest
import requests

from tests.support import ROOT
from tools import local_stack


@pytest.fixture
def secantus(tmp_path: Path) -> Iterator[local_stack.Secantus]:
    server = local_stack.Secantus(tmp_path / "local", local_stack.free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def _server_error(server: local_stack.Secantus) -> bool:
    """Send a well-framed OP_MSG the server fails on internally (it logs a traceback to stderr).

    True when the server closed the connection afterwards, as it does once the error is logged;
    False when it did not within 5 s (its thread is stuck writing the log).
    """
    body = struct.pack("<I", 0) + b"\x00" + bson.encode({"ping": 1, "$db": 5})
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:  # fmt: skip
        conn.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body)
        try:
            while conn.recv(65536):
                pass
        except TimeoutError:
            return False
    return True


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="counts the server's threads in /proc")
def test_many_server_side_errors_never_wedge_the_database(secantus):
    """Each error writes a ~500-byte traceback; with stderr on a pipe nobody reads, the pipe fills
    after about a hundred and every thread that logs afterwards hangs for good."""
    assert secantus.proc is not None
    before = _threads(secantus.proc.pid)
    for _ in range(400):
        _server_error(secantus)
    deadline = time.monotonic() + 10
    while _threads(secantus.proc.pid) > before + 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _threads(secantus.proc.pid) <= before + 10, "server threads are stuck writing their log"
    with secantus.client(socketTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
    assert secantus.log_file.read_text().count("unhandled error on connection") >= 400


# --- make run end to end --------------------------------------------------------------------


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    out: Path
    ports: dict[str, int]
    home: Path

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def pid(self, name: str) -> int:
        return int(re.search(rf"{name}.*?\(pid (\d+)", self.text(), re.S).group(1))  # type: ignore[union-attr]

    def wait_for(self, needle: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None or needle in self.text(), f"make run ended:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} from make run:\n{self.text()}"
            time.sleep(0.1)

    def exited(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)


def start_make_run(home: Path, out: Path, **env: str) -> Run:
    ports = {name: local_stack.free_port() for name in ("API_PORT", "MOTO_PORT", "DOCDB_PORT")}
    environment = {**os.environ, "LOCAL_DIR": str(home), **{k: str(v) for k, v in ports.items()}, **env}
    with out.open("wb") as sink:
        # A session of its own, so the test can send Ctrl-C the way a terminal does: to the whole group.
        proc = subprocess.Popen([sys.executable, "-m", "tools.local_stack"], cwd=ROOT, env=environment,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return Run(proc, out, ports, home)


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every make run of this module: the database is bootstrapped once."""
    return tmp_path_factory.mktemp("make-run") / "local"


def _make_run(home: Path, out: Path) -> Iterator[Run]:
    run = start_make_run(home, out, DEV_API_PASSWORD="newcomer-secret-9")
    try:
        run.wait_for("Add users:")
        yield run
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGTERM)
            run.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def make_run(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One make run for the tests that only look at it; the Ctrl-C test, last, ends it."""
    yield from _make_run(home, tmp_path_factory.mktemp("make-run-out") / "out")


@pytest.fixture
def fresh_make_run(home: Path, make_run: Run, tmp_path: Path) -> Iterator[Run]:
    """A make run of its own (after the shared one has stopped), for tests that break it."""
    if make_run.proc.poll() is None:
        os.killpg(make_run.proc.pid, signal.SIGTERM)
        make_run.proc.wait(timeout=30)
    yield from _make_run(home, tmp_path / "out")


def test_make_run_never_prints_a_password_and_says_where_they_are(make_run):
    text = make_run.text()
    for password in ("newcomer-secret-9", local_stack.DB_PASSWORD, "apipassword"):
        assert password not in text
    assert "$DEV_API_PASSWORD" in text and "README" in text
    base = f"http://127.0.0.1:{make_run.ports['API_PORT']}"
    assert requests.get(f"{base}/docdb/blog/test", auth=("apiuser", "newcomer-secret-9"), timeout=10).status_code == 200


def test_a_user_added_with_tools_users_local_logs_in_at_once(make_run):
    base = f"http://127.0.0.1:{make_run.ports['API_PORT']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"MOTO_PORT": str(make_run.ports["MOTO_PORT"]), "DOCDB_REST_PASSWORD": "alice-pass-1"}
    added = subprocess.run([sys.executable, "-m", "tools.users", "--local", "add", "alice", "--grant", "blog/*:r"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert requests.get(f"{base}/docdb/blog/test", auth=("alice", "alice-pass-1"), timeout=10).status_code == 200


def test_a_second_make_run_on_the_same_folder_says_who_holds_it_in_one_line(make_run, tmp_path):
    assert make_run.proc.poll() is None
    second = start_make_run(make_run.home, tmp_path / "second.out")
    assert second.exited(timeout=60) != 0
    text = second.text().strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert f"pid {make_run.proc.pid}" in text and str(make_run.home) in text
    assert make_run.proc.poll() is None  # the first one is untouched


def test_ctrl_c_says_what_it_stopped_and_stops_it(make_run):
    pids = {name: make_run.pid(name) for name in ("moto", "SecantusDB", "the local gateway")}
    os.killpg(make_run.proc.pid, signal.SIGINT)
    make_run.exited()
    [line] = [line for line in make_run.text().splitlines() if line.startswith("make run (Ctrl-C)")]
    for name, pid in pids.items():
        assert f"{name} (pid {pid})" in line
    assert all(_closed(port) for port in make_run.ports.values())


@pytest.mark.parametrize("victim", ["SecantusDB", "moto"])
def test_when_a_server_dies_make_run_says_so_and_stops(fresh_make_run, victim):
    run = fresh_make_run
    os.kill(run.pid(victim), signal.SIGKILL)
    assert run.exited() == 1
    text = run.text()
    assert f"{victim} (pid {run.pid(victim)}) was killed by signal 9" in text
    assert "Traceback" not in text
    assert all(_closed(port) for port in run.ports.values())


def test_make_shows_pip_installing_instead_of_silence():
    recipe = [line for line in (ROOT / "Makefile").read_text().splitlines() if "install" in line and "-r " in line]
    assert recipe, "the Makefile no longer installs requirements with pip -r"
    for line in recipe:
        assert "--quiet" not in line and " -q" not in line, line
