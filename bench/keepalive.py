"""Keep-alive against a fresh connection per request, on `make run`'s server.

Python's http.server writes a response's headers and body in two sends; with
Nagle's algorithm on, the body waits for the client's delayed ACK (~40 ms on
Linux), so a client that reuses its connection (``requests.Session``, a
browser) was several times slower than one that reconnects every time.
tools/local_gateway.py sets TCP_NODELAY and writes once.  Target: a
keep-alive request costs at most 1.5x a fresh connection's (it should cost
less).  Plain ``chalice local`` is measured beside it, for the record.

    python -m bench.keepalive        # on its own backends
    keepalive.keep_alive(backends, rows)   # from bench/__main__.py
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.timing import Row, paired
from tools import local_stack

ROOT = Path(__file__).resolve().parents[1]
REPS = 60
TARGET = 1.5
BODY = json.dumps({"favorite_movie": "Interstellar"}).encode()
HEADERS = {"Content-Type": "application/json"}

SERVERS = {
    "make run (tools/local_gateway.py)": [sys.executable, "-m", "tools.local_gateway"],
    "plain chalice local": [str(local_stack.BIN / "chalice"), "local", "--no-autoreload"],
}


@contextlib.contextmanager
def serve(command: list[str], env: dict[str, str]) -> Iterator[int]:
    port = local_stack.free_port()
    args = [*command, "--stage", "local", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            local_stack.wait_for_port(port, proc, args[0], timeout=60)
            yield port
        finally:
            local_stack.stop(proc)


def _request(conn: http.client.HTTPConnection) -> None:
    conn.request("PUT", "/movies/bench-keepalive", body=BODY, headers=HEADERS)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"PUT /movies answered {response.status}")


def _clients(port: int) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def keep_alive() -> None:
        _request(kept)

    def fresh() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            _request(conn)
        finally:
            conn.close()

    return keep_alive, fresh, kept.close


def keep_alive(backends: Any, rows: list[Row], section: str = "6") -> None:
    """Add one row per server: keep-alive median against a fresh connection's, paired."""
    for name, command in SERVERS.items():
        with serve(command, backends.env()) as port:
            ours, theirs, close = _clients(port)
            try:
                pair = paired(ours, theirs, REPS)
            finally:
                close()
        ours_server = name.startswith("make run")
        rows.append(Row(
            section=section,
            figure=f"keep-alive PUT /movies, {name}",
            measured=f"{pair.ours:.2f} ms",
            baseline=f"{pair.theirs:.2f} ms (fresh connection)",
            result=f"{pair.ratio:.2f}x",
            target=f"<= {TARGET}x" if ours_server else "(for comparison)",
            met=pair.ratio <= TARGET if ours_server else None,
        ))  # fmt: skip


def main() -> None:
    from bench import stack
    from bench.timing import table

    rows: list[Row] = []
    # Only the movies table is needed: skip the full bench data set.
    with (
        tempfile.TemporaryDirectory(prefix="docdb-rest-keepalive-") as home,
        local_stack.backends(Path(home), local_stack.free_port(), local_stack.free_port()) as (moto, secantus),
    ):
        local_stack.seed(moto.endpoint, secantus, {stack.API_USER[0]: (stack.API_USER[1], stack.API_USER[2])})
        keep_alive(stack.Backends(moto, secantus), rows)
    print(table(rows))


if __name__ == "__main__":
    main()
