"""The straightforward authorizer that ours is measured against.

What one writes without thinking about cold starts: boto3 imported at module
load, the users secret read with a boto3 client, the password checked with
the same scrypt parameters as ours (so both pay the same hashing), and the
policy returned.  No caching beyond the container, which a first request
never benefits from anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import boto3


def _verify(password: str, encoded: str) -> bool:
    _, n, r, p, salt, digest = encoded.split("$")
    expected = base64.b64decode(digest)
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
        dklen=len(expected), maxmem=256 * int(n) * int(r) * int(p),
    )  # fmt: skip
    return hmac.compare_digest(candidate, expected)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    secrets = boto3.client("secretsmanager")
    users = json.loads(secrets.get_secret_value(SecretId=os.environ["API_USERS_SECRET_ID"])["SecretString"])["users"]
    scheme, _, token = event["authorizationToken"].partition(" ")
    user, _, password = base64.b64decode(token).decode().partition(":")
    entry = users.get(user)
    if scheme.lower() != "basic" or entry is None or not _verify(password, entry["password"]):
        raise Exception("Unauthorized")  # what API Gateway turns into a 401
    return {
        "principalId": user,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
        },
        "context": {"grants": ",".join(entry.get("grants", []))},
    }
