"""The local backends for the benchmarks, their data, and Lambda-shaped events.

Everything starts on free loopback ports in a temporary home through the
same pieces as ``make run`` (tools/local_stack.py), and is stopped on exit.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tools import local_stack

ROOT = Path(__file__).resolve().parents[1]
API_USER = ("apiuser", "apipassword", ["*/*:rw"])
DB, DOCS, WRITES = "bench", "docs", "writes"
DOC_COUNT = 2000
SMALL_TABLE, BIG_TABLE = local_stack.LINKS_TABLE, "links-10k"
SMALL_ITEMS, BIG_ITEMS = 100, 10_000
# API Gateway hands the API function the authorizer's context after caching it.
AUTHORIZER_CONTEXT = {"principalId": API_USER[0], "grants": "*/*:rw"}


def stage_env() -> dict[str, str]:
    """The ``local`` stage's environment variables, as Lambda would set them.

    Less the local stage's two conveniences, which a deployed stage leaves at
    their defaults: re-reading the users secret on every request
    (``API_USERS_TTL_SECONDS=0``) and a journaled write after each commit for
    SecantusDB (``DOCDB_JOURNAL_AFTER_COMMIT``).
    """
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config["stages"]["local"]["environment_variables"])
    for local_only in ("API_USERS_TTL_SECONDS", "DOCDB_JOURNAL_AFTER_COMMIT"):
        env.pop(local_only, None)
    return env


@dataclass
class Backends:
    moto: local_stack.Moto
    secantus: local_stack.Secantus

    def env(self) -> dict[str, str]:
        """What a Lambda container of the local stage sees, pointed at these servers."""
        return {
            **local_stack.aws_env(self.moto.endpoint),
            **stage_env(),
            "DOCDB_CA_FILE": str(self.secantus.ca_file),
        }

    def dynamodb(self) -> Any:
        import botocore.session

        session = botocore.session.get_session()
        return session.create_client(
            "dynamodb",
            region_name=local_stack.REGION,
            endpoint_url=self.moto.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextlib.contextmanager
def backends() -> Iterator[Backends]:
    with (
        tempfile.TemporaryDirectory(prefix="docdb-rest-bench-") as home,
        local_stack.backends(Path(home), local_stack.free_port(), local_stack.free_port()) as (moto, secantus),
    ):
        stack = Backends(moto, secantus)
        local_stack.seed(moto.endpoint, secantus, {API_USER[0]: (API_USER[1], API_USER[2])})
        seed_tables(stack)
        seed_documents(stack)
        yield stack


def seed_tables(stack: Backends) -> None:
    """``links`` with 100 items and ``links-10k`` with 10,000."""
    client = stack.dynamodb()
    client.create_table(
        TableName=BIG_TABLE,
        KeySchema=[{"AttributeName": "link_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "link_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for table, count in ((SMALL_TABLE, SMALL_ITEMS), (BIG_TABLE, BIG_ITEMS)):
        for start in range(0, count, 25):
            requests = [
                {"PutRequest": {"Item": {"link_id": {"S": str(uuid.uuid4())},
                                         "link": {"S": f"https://example.com/page/{start + i}"}}}}
                for i in range(min(25, count - start))
            ]  # fmt: skip
            client.batch_write_item(RequestItems={table: requests})


def seed_documents(stack: Backends) -> None:
    from bench.data import documents

    with contextlib.closing(stack.secantus.client()) as client:
        client[DB].drop_collection(DOCS)
        client[DB].drop_collection(WRITES)
        client[DB][DOCS].insert_many(documents(DOC_COUNT))
        client[DB][DOCS].create_index("sku", unique=True)


class LambdaContext:
    """The attributes of Lambda's context object that code may read."""

    function_name = "docdb-rest-dev"
    memory_limit_in_mb = 1024
    aws_request_id = "bench-request"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docdb-rest-dev"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def event(method: str, url: str, resource: str, path_params: dict[str, str] | None = None,
          body: str | None = None, authorized: bool = False) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event for ``method url`` matched to ``resource``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "Accept": "*/*",
               "User-Agent": "bench", "X-Forwarded-Proto": "https"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    context: dict[str, Any] = {
        "resourcePath": resource, "httpMethod": method, "path": f"/api{parts.path}", "stage": "api",
        "requestId": "bench-request", "accountId": "123456789012", "apiId": "abc123",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
    }
    if authorized:
        context["authorizer"] = dict(AUTHORIZER_CONTEXT)
    return {
        "resource": resource, "path": parts.path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": dict(query) or None,
        "multiValueQueryStringParameters": {k: [v for kk, v in query if kk == k] for k, _ in query} or None,
        "pathParameters": path_params, "stageVariables": None, "requestContext": context,
        "body": body, "isBase64Encoded": False,
    }  # fmt: skip


def docdb_event(method: str, query: str = "", body: str | None = None, collection: str = DOCS) -> dict[str, Any]:
    url = f"/docdb/{DB}/{collection}" + (f"?{query}" if query else "")
    return event(method, url, "/docdb/{db}/{collection}", {"db": DB, "collection": collection}, body, True)


def link_event(query: str = "") -> dict[str, Any]:
    return event("GET", "/link" + (f"?{query}" if query else ""), "/link")
