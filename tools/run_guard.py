"""What `make run` needs besides the servers: one owner per data directory, a watch on every
process it started, and messages that say what happened in one line.

tools/local_stack.py's ``main`` uses these; they are apart from it so the stack's pieces
(shared with the tests and the benchmarks) stay about starting servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

LOCK_NAME = "make-run.lock"


class AlreadyRunning(SystemExit):
    """Another `make run` holds the data directory (the message names its pid)."""


@contextlib.contextmanager
def data_dir_lock(home: Path) -> Iterator[Path]:
    """Hold ``home/make-run.lock`` for as long as this `make run` lives.

    An flock, so the kernel releases it when the process dies however it dies (no stale lock
    to clean up); the file holds the owner's pid for the message a second `make run` prints.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise AlreadyRunning(
                f"{home} is in use by {owner} (lock {path}): stop that `make run` first, "
                "or set LOCAL_DIR to another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"make run pid {os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


@dataclass
class Watched:
    """A process `make run` started, by the name its messages use."""

    name: str
    proc: subprocess.Popen[Any]
    log: Path | None = None

    def describe(self) -> str:
        return f"{self.name} (pid {self.proc.pid})"


def exit_message(watched: Watched) -> str:
    code = watched.proc.returncode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
    where = f"; its log: {watched.log}" if watched.log else ""
    return f"make run: {watched.describe()} {how}{where}. Stopping the rest."


def watch(processes: list[Watched], interval: float = 0.5, out: TextIO = sys.stdout) -> Watched:
    """Wait until one of ``processes`` exits; say which, and return it.

    A process that ends at the same moment as a Ctrl-C is the Ctrl-C's doing (the terminal
    sends SIGINT to every process of the group): the short grace lets the KeyboardInterrupt
    arrive first, so it is not reported as a crash.
    """
    while True:
        for watched in processes:
            if watched.proc.poll() is not None:
                time.sleep(0.3)
                print(exit_message(watched), file=out, flush=True)
                return watched
        time.sleep(interval)


def stop_all(processes: list[Watched], stop: Any, reason: str, skip: Watched | None = None,
             out: TextIO = sys.stdout) -> None:  # fmt: skip
    """Stop every process (last started first) and say in one line what was stopped."""
    for watched in reversed(processes):
        stop(watched.proc)
    names = ", ".join(w.describe() for w in reversed(processes) if w is not skip)
    if names:
        print(f"make run ({reason}): stopped {names}.", file=out, flush=True)


def log_tail(path: Path | None, lines: int = 3) -> str:
    """The last lines of a log, for a message about a process that failed to start."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read().decode(errors="replace").strip().splitlines()[-lines:]
    return (" Last lines of " + str(path) + ": " + " | ".join(tail)) if tail else ""
