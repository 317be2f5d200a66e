"""The OpenAPI document: valid, served publicly, and in step with the routes."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

import app as app_module
from chalicelib import openapi, paging
from chalicelib.docdb import query
from tests.support import body

DOC = openapi.document()
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in DOC["paths"].items() for method in item if method in METHODS}


def app_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, methods in app_module.app.routes.items() for method in methods}


def test_document_is_valid_openapi_3():
    validate(DOC)
    assert DOC["openapi"].startswith("3.")


def test_every_route_is_documented():
    missing = app_operations() - documented_operations()
    assert not missing, f"routes missing from the OpenAPI document (see chalicelib/openapi.py): {sorted(missing)}"


def test_every_documented_operation_is_a_route():
    extra = documented_operations() - app_operations()
    assert not extra, f"documented operations the app does not serve: {sorted(extra)}"


def test_path_parameters_match_the_route_placeholders():
    for path, item in DOC["paths"].items():
        placeholders = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == placeholders, path


@pytest.mark.parametrize("path", [p for p in DOC["paths"] if p.startswith("/docdb/")])
def test_docdb_operations_document_every_error_of_the_contract(path):
    operations = {method: op for method, op in DOC["paths"][path].items() if method in METHODS}
    assert operations
    for method, operation in operations.items():
        assert operation["security"] == [{"basicAuth": []}]
        assert {"400", "401", "403", "503"} <= set(operation["responses"]), (path, method)
        if method not in ("get", "head"):
            assert {"413", "415"} <= set(operation["responses"]), (path, method)
    if path.count("/") == 3:  # a collection: its inserts may collide on _id
        assert "409" in operations["post"]["responses"]


def test_every_response_but_204_has_a_json_body_schema():
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method not in METHODS or method == "head":  # HEAD answers carry no body
                continue
            for status, response in operation["responses"].items():
                if status not in ("204", "304") and path != "/docs":  # /docs is the HTML page
                    assert "schema" in response["content"]["application/json"], (path, method, status)


def test_limits_come_from_the_code():
    [limit] = [p for p in DOC["paths"]["/link"]["get"]["parameters"] if p["name"] == "limit"]
    assert limit["schema"]["maximum"] == paging.MAX_LIMIT
    insert = DOC["paths"]["/docdb/{db}/{collection}"]["post"]["requestBody"]["content"]["application/json"]
    assert insert["schema"]["oneOf"][1]["maxItems"] == query.MAX_DOCUMENTS_PER_INSERT


def test_openapi_json_is_served_without_credentials(client):
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert body(response) == json.loads(json.dumps(DOC))


def test_health_is_public_and_touches_no_backend(client, monkeypatch):
    def no_backend(*_args, **_kwargs):
        raise AssertionError("/health called a backend getter")

    for getter in ("get_settings", "get_secrets", "get_user_directory", "get_collection_service",
                   "get_link_store", "get_movie_store"):  # fmt: skip
        monkeypatch.setattr(app_module, getter, no_backend)
    response = client.http.get("/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}


def test_every_write_operation_describes_the_idempotency_key_and_its_answers() -> None:
    from chalicelib import openapi

    writes = [
        (path, method, operation)
        for path, item in openapi.document()["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch", "delete") and not operation["operationId"].startswith("aggregate_")
    ]
    # links, movies, the three collection scopes, a document by _id under each scope, the Data API's two routes
    assert len(writes) == 4 + 3 * 4 + 3 * 3 + 2
    for path, method, operation in writes:
        where = f"{method} {path}"
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"]), where
        assert {"409", "422", "503"} <= set(operation["responses"]), where
        assert "Retry-After" in operation["responses"]["409"]["headers"], where
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                assert "Idempotent-Replayed" in response["headers"], where
