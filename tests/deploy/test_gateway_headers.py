"""The gateway's own answers (401, authorizer failures, throttling, …) carry nosniff too (issue 11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.support import ROOT


def _gateway_responses(value: Any, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        parameters = value.get("responseParameters")
        if isinstance(parameters, dict) and any(k.startswith("gatewayresponse.") for k in parameters):
            yield name, parameters
        for key, item in value.items():
            yield from _gateway_responses(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _gateway_responses(item, name)


def test_every_gateway_response_carries_nosniff():
    responses = list(_gateway_responses(json.loads((ROOT / "infra" / "resources.json").read_text())))
    assert len(responses) >= 5
    for name, parameters in responses:
        assert parameters.get("gatewayresponse.header.X-Content-Type-Options") == "'nosniff'", name
