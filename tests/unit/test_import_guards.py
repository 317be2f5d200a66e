"""Cold paths import only what they need, checked in a fresh interpreter.

A module imported once stays imported, so these run each path in a new
Python process (as a new Lambda container would) and list which heavy
modules it loaded.  An eager ``import pymongo`` at the top of app.py, or a
getter that builds a client the path does not use, fails them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import USERS
from tools import lambda_runtime, local_stack, secrets_extension

ROOT = Path(__file__).resolve().parents[2]
WATCHED = ("pymongo", "bson", "orjson", "botocore", "boto3", "urllib3")
TOKEN = "guard-session-token"

SCRIPT = textwrap.dedent(
    """
    import json, sys

    event, handler_name = json.loads(sys.argv[1]), sys.argv[2]
    watched = sys.argv[3].split(",")


    class Context:
        function_name = "docdb-rest-local"
        memory_limit_in_mb = 512
        aws_request_id = "guard"

        def get_remaining_time_in_millis(self):
            return 25000


    import app

    try:
        answer = getattr(app, handler_name)(event, Context())
    except Exception as exc:  # the authorizer refuses by raising
        answer = {"raised": str(exc)}
    loaded = sorted(m for m in watched if m in sys.modules)
    print(json.dumps({"answer": answer, "loaded": loaded}))
    """
)


def stage_env() -> dict[str, str]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return dict(config["stages"]["local"]["environment_variables"])


def cold(handler: str, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Import app.py in a fresh process, call ``app.<handler>`` once, and report."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(event), handler, ",".join(WATCHED)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def env(stack: Any) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PARAMETERS_SECRETS_", "AWS_SESSION_TOKEN"))}
    return {**base, **local_stack.aws_env(stack.moto.endpoint), **stage_env(), "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def extension_env(stack: Any, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The same container with the Parameters and Secrets extension (its stand-in) beside it."""
    with secrets_extension.running(stack.moto.endpoint, TOKEN) as server:
        yield {**env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(server.port), "AWS_SESSION_TOKEN": TOKEN}


def basic_auth_event(password: str | None = None) -> dict[str, str]:
    return lambda_runtime.token_event("apiuser", password or USERS["apiuser"][0])


# --- the authorizer -------------------------------------------------------------------------


def test_authorizer_cold_start_imports_no_database_driver(env: dict[str, str]) -> None:
    report = cold("basic_auth", basic_auth_event(), env)
    assert report["answer"]["principalId"] == "apiuser"  # it really checked the password
    assert not {"pymongo", "bson", "orjson"} & set(report["loaded"]), report["loaded"]


def test_authorizer_refusal_imports_no_database_driver(env: dict[str, str]) -> None:
    report = cold("basic_auth", basic_auth_event("wrong-password"), env)
    assert "answer" in report and "principalId" not in report["answer"]
    assert not {"pymongo", "bson", "orjson"} & set(report["loaded"]), report["loaded"]


def test_authorizer_with_the_secrets_extension_imports_no_aws_sdk_either(extension_env: dict[str, str]) -> None:
    report = cold("basic_auth", basic_auth_event(), extension_env)
    assert report["answer"]["principalId"] == "apiuser"
    assert report["loaded"] == [], report["loaded"]


# --- the tables: botocore, but no driver, bson, orjson or boto3 ------------------------------------


@pytest.mark.parametrize("path", ["/link", "/movies"])
def test_a_cold_table_request_imports_no_driver_bson_orjson_or_boto3(env: dict[str, str], path: str) -> None:
    report = cold("app", lambda_runtime.proxy_event("GET", path, path), env)
    assert report["answer"]["statusCode"] == 200, report["answer"]
    assert not {"pymongo", "bson", "orjson", "boto3"} & set(report["loaded"]), report["loaded"]


# --- /health ------------------------------------------------------------------------------------


def test_health_cold_start_imports_no_driver_and_no_aws_sdk(env: dict[str, str]) -> None:
    report = cold("app", lambda_runtime.proxy_event("GET", "/health", "/health"), env)
    assert report["answer"]["statusCode"] == 200 and json.loads(report["answer"]["body"]) == {"status": "ok"}
    assert report["loaded"] == [], report["loaded"]


# --- a DocumentDB read with the extension: the driver, but no AWS SDK ---------------------------


def test_docdb_read_with_the_secrets_extension_imports_no_aws_sdk(stack: Any, extension_env: dict[str, str]) -> None:
    stack.mongo["guards"]["docs"].insert_one({"n": 1})
    event = lambda_runtime.proxy_event(
        "GET", "/docdb/{db}/{collection}", "/docdb/guards/docs", {"db": "guards", "collection": "docs"},
        {"principalId": "apiuser", "grants": "*/*:rw"},
    )  # fmt: skip
    report = cold("app", event, {**extension_env, "DOCDB_CA_FILE": str(stack.secantus.ca_file)})
    assert report["answer"]["statusCode"] == 200, report["answer"]
    assert not {"botocore", "boto3", "urllib3"} & set(report["loaded"]), report["loaded"]
