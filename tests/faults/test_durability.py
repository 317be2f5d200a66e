"""An acknowledged write survives the database being killed (issue 11, point 1).

A dedicated SecantusDB (not the session's shared one) is killed with SIGKILL
the moment the API has answered 2xx, restarted on the same data directory,
and read directly: the effect of the write must be there.  Every write kind
the API makes is checked several times over.  The API's client asks for
``w: "majority", j: true``; with the server's default write concern the
journal is not yet on disk when the reply goes out and these writes are lost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.docdb.client import DocdbConnection, build_client
from chalicelib.docdb.service import CollectionService
from tests.support import ADMIN, FixedSecret, send
from tools import local_stack

REPETITIONS = 6



class KillableDatabase:
    """A SecantusDB of this test's own, and the API's service aimed at it."""

    def __init__(self, home: Any) -> None:
        self.server = local_stack.Secantus(home, local_stack.free_port())
        self.server.start()
        self.connection = DocdbConnection(
            FixedSecret(self.server.secret()),
            "durability",
            str(self.server.ca_file),
            1,
            factory=build_client,  # the app's write concern unless the stage says otherwise
            # As the local stage sets it: SecantusDB acknowledges a commit before its journal is on disk.
            journal_after_commit=True,
        )
        self.service = CollectionService(self.connection)

    def kill_and_restart(self) -> None:
        """SIGKILL: no shutdown, no checkpoint, no flush; then the same data again."""
        assert self.server.proc is not None
        self.server.proc.kill()
        self.server.proc.wait()
        self.connection.close()  # the old connections died with the server
        self.server.start()

    def documents(self, collection: str) -> dict[Any, dict[str, Any]]:
        with contextlib.closing(self.server.client()) as direct:
            return {d["_id"]: d for d in direct.blog[collection].find()}

    def stop(self) -> None:
        self.connection.close()
        self.server.stop()


@pytest.fixture
def killable(stack, tmp_path, use) -> Iterator[KillableDatabase]:
    database = KillableDatabase(tmp_path / "killable")
    use(collections=database.service)
    try:
        yield database
    finally:
        database.stop()


def _answered(response: Any, status: int) -> Any:
    assert response.status_code == status, response.body
    return response


def test_acknowledged_writes_survive_sigkill(client, killable, collection):
    started = time.monotonic()
    url = f"/docdb/blog/{collection}"
    for rep in range(REPETITIONS):
        # insert one
        _answered(send(client, "POST", url, {"_id": f"one-{rep}", "n": rep}, ADMIN), 201)
        killable.kill_and_restart()
        assert f"one-{rep}" in killable.documents(collection), f"insert one lost (repetition {rep})"

        # insert many
        many = [{"_id": f"many-{rep}-{i}", "n": i} for i in range(5)]
        _answered(send(client, "POST", url, many, ADMIN), 201)
        killable.kill_and_restart()
        stored = killable.documents(collection)
        assert all(d["_id"] in stored for d in many), f"insert many lost (repetition {rep})"

        # PATCH every document of this repetition
        patch = {"filter": {"_id": {"$in": [d["_id"] for d in many]}}, "update": {"$set": {"patched": rep}}}
        _answered(send(client, "PATCH", url, patch, ADMIN), 200)
        killable.kill_and_restart()
        stored = killable.documents(collection)
        assert all(stored[d["_id"]].get("patched") == rep for d in many), f"PATCH lost (repetition {rep})"

        # DELETE
        _answered(send(client, "DELETE", url, {"filter": {"_id": f"one-{rep}"}}, ADMIN), 200)
        killable.kill_and_restart()
        assert f"one-{rep}" not in killable.documents(collection), f"DELETE lost (repetition {rep})"
    assert time.monotonic() - started < 90  # a runaway loop, not a benchmark
