"""The local gateway (tools/local_gateway.py) as a subprocess, the way `make run` starts it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT, record_external_log
from tools import local_stack


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
