"""Cold starts pay only for the backend a request touches.

Each case runs in a fresh Python, as a new Lambda container would: it imports
app.py, serves one API Gateway event against the local stack, and reports
which heavy modules were imported on the way.  A module-level import of one
of them in app.py or on the route's path makes the case fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.support import ROOT, proxy_event
from tools import local_stack

DRIVER = """
import json, sys

import app

response = app.app(json.loads(sys.argv[1]), None)
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"status": response["statusCode"], "heavy": heavy}))
"""
DOCDB_ONLY = ["pymongo", "bson", "orjson"]


def cold_request(event: dict[str, Any], watched: list[str]) -> dict[str, Any]:
    env = {
        **os.environ,
        "LINKS_TABLE": local_stack.LINKS_TABLE,
        "MOVIES_TABLE": local_stack.MOVIES_TABLE,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(event), json.dumps(watched)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("event", "watched"),
    [
        (proxy_event("GET", "/link", "/link"), [*DOCDB_ONLY, "boto3"]),
        (proxy_event("GET", "/movies", "/movies"), [*DOCDB_ONLY, "boto3"]),
    ],
    ids=["GET /link", "GET /movies"],
)
def test_a_cold_table_request_imports_no_driver_bson_orjson_or_boto3(stack, event, watched):
    report = cold_request(event, watched)
    assert report["status"] == 200
    assert report["heavy"] == [], f"imported on a cold {event['httpMethod']} {event['path']}: {report['heavy']}"
