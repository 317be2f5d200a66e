"""Clients can tell a configuration fault from a transient outage by its Code (issue 11, point 4).

Both are 503 with Retry-After; ``ConfigurationError`` means an operator must
act, ``ServiceUnavailableError`` that trying again shortly can work.  Neither
body names a secret id or a file path (the log does).
"""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from chalicelib import aws
from chalicelib.settings import Settings
from chalicelib.tables.links import LinkStore
from chalicelib.tables.movies import MovieStore
from tests.support import ADMIN, body, get
from tools import local_stack


def _assert_503(response) -> dict:
    assert response.status_code == 503, response.body
    assert int(response.headers["Retry-After"]) > 0
    return body(response)


def test_a_missing_docdb_secret_is_a_configuration_error_without_its_id(client, stack, collection, fresh_app,
                                                                        use, caplog):
    # The test client sets the stage's own variables while a request runs, so swap the settings.
    use(settings=dataclasses.replace(
        Settings.from_env(), docdb_secret_id="local/no-such-secret", api_users_secret_id=local_stack.USERS_SECRET_ID
    ))
    caplog.set_level(logging.ERROR)
    payload = _assert_503(get(client, f"/docdb/blog/{collection}", headers=ADMIN))
    assert payload["Code"] == "ConfigurationError"
    assert "no-such-secret" not in json.dumps(payload)
    assert any("local/no-such-secret" in r.getMessage() for r in caplog.records)  # the operator sees it


def test_a_docdb_secret_that_is_not_json_is_a_configuration_error_without_its_id(client, stack, collection,
                                                                                 fresh_app):
    stack.secrets.put_secret_value(SecretId=local_stack.DOCDB_SECRET_ID, SecretString="{not json")
    try:
        payload = _assert_503(get(client, f"/docdb/blog/{collection}", headers=ADMIN))
    finally:
        stack.seed()
    assert payload["Code"] == "ConfigurationError"
    assert local_stack.DOCDB_SECRET_ID not in json.dumps(payload)


def test_a_missing_ca_bundle_is_a_configuration_error_without_its_path(client, collection, fresh_app,
                                                                       monkeypatch):
    monkeypatch.setenv("DOCDB_CA_FILE", "/nonexistent/dir/bundle.pem")
    payload = _assert_503(get(client, f"/docdb/blog/{collection}", headers=ADMIN))
    assert payload["Code"] == "ConfigurationError"
    assert "/nonexistent" not in payload["Message"] and "bundle.pem" not in payload["Message"]


@pytest.mark.parametrize("path", ["/movies", "/link"])
def test_a_missing_table_is_a_configuration_error(client, stack, use, path):
    use(links=LinkStore(aws.client("dynamodb"), "no-such-table"),
        movies=MovieStore(aws.client("dynamodb"), "no-such-table"))
    payload = _assert_503(get(client, path))
    assert payload["Code"] == "ConfigurationError"
    assert "no-such-table" not in payload["Message"]


def test_a_database_outage_is_not_a_configuration_error(client, stack, collection):
    stack.secantus.stop()
    try:
        payload = _assert_503(get(client, f"/docdb/blog/{collection}", headers=ADMIN))
    finally:
        stack.secantus.start()
    assert payload["Code"] == "ServiceUnavailableError"
