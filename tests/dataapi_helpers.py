"""Shared pieces of the Data API tests: keys for the suite's users, requests shaped like the docs' curl."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chalice.test import Client

from tests.conftest import USERS, Stack, reset_app
from tools import local_stack
from tools import users as users_tool

SNIPPET_PREFIX = "/app/data-abcde/endpoint/data/v1"
JSON = "application/json"
EJSON = "application/ejson"


def create_key(stack: Stack, user: str, label: str | None = None) -> str:
    """A new API key for ``user`` in the app's users secret, made by the user command's own code."""
    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    message = users_tool.apply(value, argparse.Namespace(command="create-key", name=user, label=label))
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    forget_secrets()
    return message.splitlines()[-1]


def revoke_key(stack: Stack, key: str) -> None:
    value = users_tool.load(stack.secrets, local_stack.USERS_SECRET_ID)
    users_tool.apply(value, argparse.Namespace(command="revoke-key", key_id=key.split(".")[0]))
    users_tool.save(stack.secrets, local_stack.USERS_SECRET_ID, value)
    forget_secrets()


def forget_secrets() -> None:
    """What the secret's TTL does in a warm container: the next request re-reads it."""
    import app as app_module

    # Only a loader the app built itself: building one here would cache the
    # settings outside a request, before the stage's environment is set.
    if app_module._SECRETS is None:
        reset_app()
    else:
        app_module.get_secrets().invalidate(local_stack.USERS_SECRET_ID)


def keys_for_every_user(stack: Stack) -> dict[str, str]:
    return {name: create_key(stack, name) for name in USERS}


def action(
    client: Client,
    name: str,
    body: Any,
    key: str | None = None,
    *,
    content_type: str | None = EJSON,
    accept: str | None = JSON,
    prefix: str = SNIPPET_PREFIX,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Any:
    """POST one action as the docs' snippets do: apiKey, Content-Type ejson, Accept json."""
    sent: dict[str, str] = {}
    if key is not None:
        sent["apiKey"] = key
    if content_type is not None:
        sent["Content-Type"] = content_type
    if accept is not None:
        sent["Accept"] = accept
    sent.update(headers or {})
    data = raw if raw is not None else json.dumps(body).encode()
    return client.http.post(f"{prefix}/action/{name}", headers=sent, body=data)


def namespace(collection: str, database: str = "learn-data-api") -> dict[str, str]:
    return {"dataSource": "mongodb-atlas", "database": database, "collection": collection}


def content_type(response: Any) -> str:
    return (response.headers.get("Content-Type") or response.headers.get("content-type") or "").split(";")[0]
