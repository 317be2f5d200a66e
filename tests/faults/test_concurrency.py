"""Concurrency, nothing lost (issue 7).

Eight processes, each standing in for a Lambda container, invoke the handler
with API Gateway proxy events against the same moto and SecantusDB.  Every
request must succeed, every acknowledged write must be there afterwards, and
the server must never hold more connections than processes × pool size.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import types
import uuid
from typing import Any

from bson import ObjectId

from tools import local_stack

PROCESSES = 8
REQUESTS = 250  # per process
POOL_SIZE = 2
DATABASE = "reliability"
DOCDB_RESOURCE = "/docdb/{db}/{collection}"


def _event(method: str, resource: str, path: str, params: dict[str, str] | None, payload: Any = None,
           query: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy event as it reaches the handler after the authorizer."""
    headers = {"Content-Type": "application/json", "Host": "api.example.com"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "authorizer": {"principalId": "apiuser", "grants": "*/*:rw"},
        },
        "body": None if payload is None else json.dumps(payload),
        "isBase64Encoded": False,
    }


def container(number: int, env: dict[str, str], collection: str) -> dict[str, Any]:
    """One Lambda container: a cold import of the app, then ``REQUESTS`` invocations in turn."""
    os.environ.update(env)
    import app

    context = types.SimpleNamespace(function_name="api_handler", aws_request_id="local")
    path = f"/docdb/{DATABASE}/{collection}"
    params = {"db": DATABASE, "collection": collection}
    kept: dict[str, int] = {}  # _id of each acknowledged, undeleted insert -> its n after updates
    links: list[str] = []
    errors: list[str] = []
    current: tuple[str, str] | None = None  # (key, _id) of the document the next find/update is about

    def invoke(event: dict[str, Any], expected: int) -> Any:
        response = app.app(event, context)
        if response["statusCode"] != expected:
            errors.append(f"{event['httpMethod']} {event['path']}: {response['statusCode']} {response['body'][:200]}")
            return None
        return json.loads(response["body"]) if response["body"] else None

    for i in range(REQUESTS):
        key = f"c{number}-{i}"
        step = i % 6
        if step == 3 and i == REQUESTS - 1:
            step = 5  # no request left to delete it with: post a link instead
        if step == 0:  # insert a document to keep
            stored = invoke(_event("POST", DOCDB_RESOURCE, path, params, {"k": key, "n": 0}), 201)
            if stored is not None:
                current = (key, stored["_id"]["$oid"])
                kept[current[1]] = 0
        elif step == 1 and current:  # find it
            found = invoke(_event("GET", DOCDB_RESOURCE, path, params, query={"filter": json.dumps({"k": current[0]})}),
                           200)
            if found is not None and [d["k"] for d in found] != [current[0]]:
                errors.append(f"find {current[0]} returned {found}")
        elif step == 2 and current:  # update it
            result = invoke(_event("PATCH", DOCDB_RESOURCE, path, params,
                                   {"filter": {"k": current[0]}, "update": {"$inc": {"n": 1}}}), 200)
            if result is not None:
                if result["modified_count"] != 1:
                    errors.append(f"update {current[0]} modified {result['modified_count']}")
                kept[current[1]] += 1
        elif step == 3:  # insert a document on a key of its own ...
            invoke(_event("POST", DOCDB_RESOURCE, path, params, {"k": key, "doomed": True}), 201)
        elif step == 4:  # ... and delete it
            doomed = f"c{number}-{i - 1}"
            result = invoke(_event("DELETE", DOCDB_RESOURCE, path, params, {"filter": {"k": doomed}}), 200)
            if result is not None and result["deleted_count"] != 1:
                errors.append(f"delete {doomed} deleted {result['deleted_count']}")
        else:  # post a link
            created = invoke(_event("POST", "/link", "/link", None, {"link": f"https://example.com/{key}"}), 201)
            if created is not None:
                links.append(created["link_id"])
    return {"kept": kept, "links": links, "errors": errors, "requests": REQUESTS}


class ConnectionSampler(threading.Thread):
    """Samples SecantusDB's open connection count until stopped."""

    def __init__(self, mongo: Any) -> None:
        super().__init__(daemon=True)
        self._mongo = mongo
        self._done = threading.Event()
        self.peak = 0
        self.samples = 0

    def current(self) -> int:
        return self._mongo.admin.command("serverStatus")["connections"]["current"]

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self._done.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, self.current())
            self.samples += 1
            self._done.wait(0.02)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)


def test_eight_containers_lose_nothing_and_stay_within_the_pool(stack):
    collection = f"conc_{uuid.uuid4().hex[:8]}"
    env = {
        **local_stack.aws_env(stack.moto.endpoint),
        "LINKS_TABLE": local_stack.LINKS_TABLE,
        "MOVIES_TABLE": local_stack.MOVIES_TABLE,
        "DOCDB_SECRET_ID": local_stack.DOCDB_SECRET_ID,
        "API_USERS_SECRET_ID": local_stack.USERS_SECRET_ID,
        "DOCDB_CA_FILE": str(stack.secantus.ca_file),
        "DOCDB_POOL_SIZE": str(POOL_SIZE),
    }
    # The sampler's own client: one monitoring connection and one pooled one.
    sampler = ConnectionSampler(stack.secantus.client(serverMonitoringMode="poll", maxPoolSize=1))
    baseline = sampler.current()  # everything not a container: this test process's clients, the sampler
    sampler.start()
    try:
        with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
            results = pool.starmap(container, [(n, env, collection) for n in range(PROCESSES)], chunksize=1)
    finally:
        sampler.stop()
        sampler._mongo.close()

    errors = [e for r in results for e in r["errors"]]
    assert errors == [], errors[:10]
    assert sum(r["requests"] for r in results) == PROCESSES * REQUESTS

    kept = {oid: n for r in results for oid, n in r["kept"].items()}
    stored = {str(d["_id"]): d.get("n") for d in stack.mongo[DATABASE][collection].find({}, {"n": 1})}
    assert stored == kept  # every acknowledged insert and update, and not one deleted document
    assert all(ObjectId.is_valid(oid) for oid in kept)

    links = [link for r in results for link in r["links"]]
    found: set[str] = set()
    for start in range(0, len(links), 100):
        keys = [{"link_id": {"S": link}} for link in links[start : start + 100]]
        response = stack.dynamodb.batch_get_item(RequestItems={local_stack.LINKS_TABLE: {"Keys": keys}})
        assert not response.get("UnprocessedKeys")
        found |= {item["link_id"]["S"] for item in response["Responses"][local_stack.LINKS_TABLE]}
    assert found == set(links)

    assert sampler.samples > 0
    assert sampler.peak - baseline <= PROCESSES * POOL_SIZE, (sampler.peak, baseline)
