"""schemathesis over /openapi.json against `make run`'s server (tools/local_gateway.py) on the real backends.

The schema is the app's own document, loaded in-process so pytest can make
one test per operation before the server starts; the first test proves it is
what the running server serves at /openapi.json.  Every operation in the
document gets generated requests, valid and invalid
(schemathesis's positive and negative modes), sent with the admin's Basic
credentials.  The checks: no 5xx, only documented status codes, the
documented content type, and bodies matching the response schemas.  Bounded
by ``EXAMPLES`` per operation and derandomized, so a run is quick and
repeatable; raise ``FUZZ_EXAMPLES`` to search harder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib import openapi
from tests.support import ADMIN, ROOT, record_external_log
from tools import local_stack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_url(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local gateway (`chalice local` as API Gateway behaves) on a free loopback port."""
    port = local_stack.free_port()
    log_path: Path = tmp_path_factory.mktemp("chalice-local") / "output.log"
    # No autoreload: a file saved elsewhere in the tree must not restart the server mid-run.
    command = [sys.executable, "-m", "tools.local_gateway", "--stage", "local",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            local_stack.wait_for_port(port, proc, "chalice local", timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            local_stack.stop(proc)
    # What the server logged goes through the suite's credential check too.
    record_external_log(log_path.read_text(errors="replace"))


def test_the_fuzzed_document_is_the_served_one(api_url):
    response = requests.get(f"{api_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(openapi.document()))


# chalice local's http.server answers 501 to methods it does not know (TRACE,
# QUERY), which API Gateway never forwards; every other undeclared method is
# still tried and must not be a 5xx.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"unexpected-methods": ["get", "put", "post", "delete", "patch", "options"]}}}
)
# The Data API's bodies may also be sent as application/ejson: JSON on the wire.
schemathesis.serializer.alias("application/ejson", "application/json")
schema = schemathesis.openapi.from_dict(openapi.document(), config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_document(case, api_url):
    case.call_and_validate(base_url=api_url, headers=ADMIN, checks=CHECKS, timeout=30)
