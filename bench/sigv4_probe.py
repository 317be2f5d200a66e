"""A what-if for cold starts, not part of the app: ``GET /link``'s scan without botocore.

A Scan sent as one SigV4-signed POST with the standard library (http.client,
hmac, hashlib).  It shows what the cold start would cost if the app's two AWS
calls (DynamoDB, Secrets Manager; both JSON protocols) did not import and
build botocore, which is most of what a cold ``GET /link`` pays.  Only the
timing means anything here: moto does not check signatures, and retries,
HTTPS and error mapping are left out.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
from typing import Any
from urllib.parse import urlsplit


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def call(service: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
    endpoint = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    region = os.environ["AWS_DEFAULT_REGION"]
    payload = json.dumps(body).encode()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": endpoint.netloc,
        "x-amz-date": stamp,
        "x-amz-target": target,
    }
    names = sorted(headers)
    signed = ";".join(names)
    canonical = "\n".join(["POST", "/", "", *(f"{k}:{headers[k]}" for k in names), "", signed, _sha256(payload)])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, _sha256(canonical.encode())])
    key = ("AWS4" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={os.environ['AWS_ACCESS_KEY_ID']}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    connection = http.client.HTTPConnection(endpoint.hostname or "127.0.0.1", endpoint.port, timeout=5)
    try:
        connection.request("POST", "/", payload, headers)
        response = connection.getresponse()
        data = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"{target}: {response.status} {data}")
    return data


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``GET /link`` (first page of 100) the botocore-free way."""
    table = os.environ["LINKS_TABLE"]
    items = call("dynamodb", "DynamoDB_20120810.Scan", {"TableName": table, "Limit": 100})["Items"]
    body = json.dumps([{k: v["S"] for k, v in item.items()} for item in items])
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}
