"""The Data API's ``/action/find`` against the REST find for the same query.

Both go through the Lambda handler with the same data: the REST find as
API Gateway hands it over after the (cached) authorizer, the action with its
``apiKey`` header, checked in the handler on every request.  Target: within
1.1× of the REST find.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import urlencode

from bench import stack
from bench.data import sku
from bench.timing import Row, paired
from bench.warm import Harness, _ms

TARGET_RATIO = 1.1


def create_key(backends: stack.Backends) -> str:
    """An API key for the bench user, made by the user command's own code."""
    import boto3

    from tools import local_stack
    from tools import users as users_tool

    client = boto3.client(
        "secretsmanager", region_name=local_stack.REGION, endpoint_url=backends.moto.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    value = users_tool.load(client, local_stack.USERS_SECRET_ID)
    message = users_tool.apply(value, argparse.Namespace(command="create-key", name=stack.API_USER[0], label="bench"))
    users_tool.save(client, local_stack.USERS_SECRET_ID, value)
    return message.splitlines()[-1]


def action_event(body: dict[str, Any], key: str) -> dict[str, Any]:
    event = stack.event("POST", "/action/find", "/action/{action}", {"action": "find"}, json.dumps(body))
    event["headers"]["apiKey"] = key
    event["multiValueHeaders"]["apiKey"] = [key]
    return event


def data_api_find(h: Harness, backends: stack.Backends, rows: list[Row]) -> None:
    key = create_key(backends)
    h.app_module.get_secrets().invalidate("local/api-users")
    ns = {"dataSource": "bench", "database": stack.DB, "collection": stack.DOCS}
    by_sku = {"sku": sku(42)}
    cases = [
        ("find 1 (by sku)", {"filter": json.dumps(by_sku)}, {"filter": by_sku, "sort": {"_id": 1}, "limit": 100}, 600),
        ("find 100", {"limit": 100}, {"sort": {"_id": 1}, "limit": 100}, 150),
        ("find 1000", {"limit": 1000}, {"sort": {"_id": 1}, "limit": 1000}, 40),
    ]
    for label, query, body, reps in cases:
        rest = h.request(stack.docdb_event("GET", urlencode(query)))
        ours = h.request(action_event({**ns, **body}, key))
        pair = paired(ours, rest, reps=reps, warmup=5)
        rows.append(Row("6", f"/action/find: {label}", _ms(pair.ours), _ms(pair.theirs) + " (REST find)",
                        f"{pair.ratio:.2f}×", f"≤ {TARGET_RATIO}×", pair.ratio <= TARGET_RATIO))  # fmt: skip
