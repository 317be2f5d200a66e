"""Twenty writers, one ETag: exactly one conditional write wins (issue 13).

Twenty processes, each standing in for a Lambda container, warm up, wait at a
barrier, and send the same conditional request at once, through the handler,
against the real SecantusDB and moto.  Four rounds share the processes:
PATCH, PUT and DELETE of one document with the same If-Match, and PUT of one
favorite movie with the same If-Match.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import types
import uuid
from typing import Any

import pytest

from tests.faults.test_concurrency import _event
from tests.support import ADMIN, body, get, send
from tools import local_stack

WRITERS = 20
DATABASE = "races"
RESOURCE = "/docdb/{db}/{collection}/{id}"
ROUNDS = ("PATCH", "PUT", "DELETE", "MOVIE")


def _conditional(event: dict[str, Any], etag: str) -> dict[str, Any]:
    event["headers"]["If-Match"] = etag
    event["multiValueHeaders"]["If-Match"] = [etag]
    return event


def writer(number: int, env: dict[str, str], collection: str, tags: dict[str, str], barrier: Any,
           results: Any) -> None:  # fmt: skip
    try:
        _write(number, env, collection, tags, barrier, results)
    except BaseException:
        import traceback

        barrier.abort()  # the others stop waiting too
        results.put(("ERROR", number, 0, traceback.format_exc()))


def _write(number: int, env: dict[str, str], collection: str, tags: dict[str, str], barrier: Any,
           results: Any) -> None:  # fmt: skip
    os.environ.update(env)
    import app

    context = types.SimpleNamespace(function_name="api_handler", aws_request_id="local")

    def document(method: str, doc_id: str, payload: Any = None) -> dict[str, Any]:
        path = f"/docdb/{DATABASE}/{collection}/{doc_id}"
        params = {"db": DATABASE, "collection": collection, "id": doc_id}
        return _event(method, RESOURCE, path, params, payload)

    movie_name = f"race-{collection}"
    # Warm up: the secret read, the database connection and the table client, before the barrier.
    for warm in (document("GET", "patch"), _event("GET", "/movies/{name}", f"/movies/{movie_name}",
                                                  {"name": movie_name})):  # fmt: skip
        warmed = app.app(warm, context)
        assert warmed["statusCode"] == 200, warmed
    requests = {
        "PATCH": _conditional(document("PATCH", "patch", {"$push": {"winners": number}}), tags["PATCH"]),
        "PUT": _conditional(document("PUT", "put", {"winner": number}), tags["PUT"]),
        "DELETE": _conditional(document("DELETE", "delete"), tags["DELETE"]),
        "MOVIE": _conditional(
            _event("PUT", "/movies/{name}", f"/movies/{movie_name}", {"name": movie_name},
                   {"favorite_movie": f"winner {number}"}),
            tags["MOVIE"],
        ),
    }
    for round_name in ROUNDS:
        barrier.wait(timeout=120)
        response = app.app(requests[round_name], context)
        results.put((round_name, number, response["statusCode"], response["body"]))


@pytest.fixture(scope="module")
def race(stack) -> dict[str, Any]:
    """Seed one document per round and a movie, run the writers, and collect every answer."""
    from chalice.test import Client

    import app as app_module
    from tests.support import ROOT

    collection = f"race_{uuid.uuid4().hex[:8]}"
    movie_name = f"race-{collection}"
    tags: dict[str, str] = {}
    with Client(app_module.app, stage_name="local", project_dir=str(ROOT)) as client:
        for doc_id in ("patch", "put", "delete"):
            response = send(client, "PUT", f"/docdb/{DATABASE}/{collection}/{doc_id}", {"winners": []}, ADMIN)
            assert response.status_code == 201
            tags[doc_id.upper()] = response.headers["ETag"]
        response = send(client, "PUT", f"/movies/{movie_name}", {"favorite_movie": "nobody yet"})
        tags["MOVIE"] = response.headers["ETag"]
        assert get(client, f"/movies/{movie_name}").headers["ETag"] == tags["MOVIE"]

    env = {
        **local_stack.aws_env(stack.moto.endpoint),
        "LINKS_TABLE": local_stack.LINKS_TABLE,
        "MOVIES_TABLE": local_stack.MOVIES_TABLE,
        "DOCDB_SECRET_ID": local_stack.DOCDB_SECRET_ID,
        "API_USERS_SECRET_ID": local_stack.USERS_SECRET_ID,
        "DOCDB_CA_FILE": str(stack.secantus.ca_file),
    }
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(WRITERS), spawn.Queue()
    processes = [
        spawn.Process(target=writer, args=(n, env, collection, tags, barrier, results), daemon=True)
        for n in range(WRITERS)
    ]
    for process in processes:
        process.start()
    answers: list[tuple[str, int, int, str]] = []
    while len(answers) < WRITERS * len(ROUNDS):
        answers.append(results.get(timeout=240))
        assert answers[-1][0] != "ERROR", answers[-1][3]
    for process in processes:
        process.join(timeout=30)
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    by_round: dict[str, list[tuple[int, int, str]]] = {name: [] for name in ROUNDS}
    for round_name, number, status, text in answers:
        by_round[round_name].append((number, status, text))
    return {"rounds": by_round, "collection": collection, "movie": movie_name, "tags": tags}


def _one_winner(answers: list[tuple[int, int, str]], success: int, losers: tuple[int, ...] = (412,)) -> tuple[int, str]:
    statuses = sorted(status for _, status, _ in answers)
    assert statuses.count(success) == 1 and len(statuses) == WRITERS, statuses
    assert all(status in losers for status in statuses if status != success), statuses
    [(winner, _, text)] = [(n, s, t) for n, s, t in answers if s == success]
    return winner, text


def test_twenty_concurrent_patches_with_one_etag_make_exactly_one_change(race, stack):
    winner, text = _one_winner(race["rounds"]["PATCH"], 200)
    stored = stack.mongo[DATABASE][race["collection"]].find_one({"_id": "patch"})
    assert stored["winners"] == [winner]
    assert json.loads(text)["winners"] == [winner]


def test_twenty_concurrent_puts_with_one_etag_make_exactly_one_change(race, stack):
    winner, _ = _one_winner(race["rounds"]["PUT"], 200)
    stored = stack.mongo[DATABASE][race["collection"]].find_one({"_id": "put"})
    assert stored["winner"] == winner and "winners" not in stored


def test_twenty_concurrent_deletes_with_one_etag_delete_once(race, stack):
    # A loser that looks after the winner finds no document: 404, as RFC 9110 13.2.1 has it
    # (a request that would fail without its conditions ignores them); one that looks
    # before finds another revision: 412.  Never a second 204.
    _one_winner(race["rounds"]["DELETE"], 204, losers=(404, 412))
    assert stack.mongo[DATABASE][race["collection"]].count_documents({"_id": "delete"}) == 0


def test_twenty_concurrent_movie_puts_with_one_etag_make_exactly_one_change(race, stack):
    winner, text = _one_winner(race["rounds"]["MOVIE"], 200)
    item = stack.dynamodb.get_item(TableName=local_stack.MOVIES_TABLE, Key={"name": {"S": race["movie"]}})["Item"]
    assert item["favorite_movie"]["S"] == f"winner {winner}"
    assert body(types.SimpleNamespace(body=text))["favorite_movie"] == f"winner {winner}"
