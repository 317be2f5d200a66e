"""Browser apps on any origin can read every response and every error, deployed and local.

The app's routes share one CORS configuration (chalicelib/web.py); the errors
API Gateway answers itself come from the gateway responses in
infra/resources.json; `make run`'s gateway (tools/local_gateway.py) adds the
same headers to the errors it answers.  These tests keep the three in step.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import app as app_module
from chalicelib import web
from chalicelib.gateway import CHALLENGE
from tests.support import ROOT, send
from tools import local_gateway

TEMPLATE = json.loads((ROOT / "infra" / "resources.json").read_text())
RESPONSES: dict[str, Any] = TEMPLATE["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
    "x-amazon-apigateway-gateway-responses"
]
EXPOSED = ",".join(web.EXPOSED_HEADERS)


def _quoted(value: str) -> str:
    return f"'{value}'"


def test_every_route_uses_the_one_cors_configuration() -> None:
    for path, methods in app_module.app.routes.items():
        for method, route in methods.items():
            assert route.cors is web.CORS, (path, method)


def test_the_configuration_exposes_every_header_a_client_reads() -> None:
    headers = web.CORS.get_access_control_headers()
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert {"Link", "X-Total-Count", "Location", "Retry-After", "ETag", "Idempotent-Replayed"} <= set(
        headers["Access-Control-Expose-Headers"].split(",")
    )


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_every_gateway_response_carries_the_same_cors_headers(name: str) -> None:
    parameters = RESPONSES[name]["responseParameters"]
    assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
    assert parameters["gatewayresponse.header.Access-Control-Allow-Headers"] == _quoted(web.CORS.allow_headers)
    assert parameters["gatewayresponse.header.Access-Control-Expose-Headers"] == _quoted(EXPOSED)
    assert "application/json" in RESPONSES[name]["responseTemplates"]


def test_local_gateway_errors_carry_the_same_headers_as_the_gateway_responses() -> None:
    headers = local_gateway.error_headers(401)
    assert headers["Access-Control-Expose-Headers"] == EXPOSED
    assert headers["Access-Control-Allow-Headers"] == web.CORS.allow_headers
    assert headers["WWW-Authenticate"] == CHALLENGE
    unauthorized = RESPONSES["UNAUTHORIZED"]["responseParameters"]
    assert unauthorized["gatewayresponse.header.WWW-Authenticate"] == _quoted(CHALLENGE)


@pytest.mark.parametrize("name", ["MISSING_AUTHENTICATION_TOKEN", "INVALID_SIGNATURE"])
def test_unknown_routes_are_a_neutral_json_404_deployed_as_locally(name: str) -> None:
    response = RESPONSES[name]
    assert response["statusCode"] == "404"
    template = response["responseTemplates"]["application/json"]
    # API Gateway's own message here quotes the caller's Authorization header: never use it.
    assert "$" not in template
    assert json.loads(template) == json.loads(local_gateway.NOT_FOUND_BODY)


def test_a_failing_authorizer_gets_the_same_body_locally_and_deployed() -> None:
    template = RESPONSES["AUTHORIZER_FAILURE"]["responseTemplates"]["application/json"]
    assert json.loads(template) == json.loads(local_gateway.AUTHORIZER_FAILURE_BODY)
    assert RESPONSES["AUTHORIZER_FAILURE"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'5'"


def test_no_gateway_response_can_echo_a_request_header() -> None:
    for name, response in RESPONSES.items():
        for template in response["responseTemplates"].values():
            assert "$input" not in template and "method.request" not in template, name


def test_app_errors_expose_the_headers_too(client: Any) -> None:
    for response in (
        client.http.get("/link/no-such-link"),
        send(client, "POST", "/link", raw=b"{not json"),
        client.http.get("/movies?limit=0"),
    ):
        assert 400 <= response.status_code < 500
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Expose-Headers"] == EXPOSED
