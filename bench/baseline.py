"""The straightforward handler that cold starts are measured against.

What one writes without thinking about cold starts: boto3 and pymongo
imported at module load, the secret fetched with a boto3 client, a
MongoClient with the same options as ours, then the query.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pymongo
from bson import json_util

_mongo: Any = None


def _collection(database: str, collection: str) -> Any:
    global _mongo
    if _mongo is None:
        secrets = boto3.client("secretsmanager")
        secret = json.loads(secrets.get_secret_value(SecretId=os.environ["DOCDB_SECRET_ID"])["SecretString"])
        _mongo = pymongo.MongoClient(
            secret["host"], int(secret["port"]), username=secret["username"], password=secret["password"],
            tls=True, tlsCAFile=os.environ["DOCDB_CA_FILE"], retryWrites=False, maxPoolSize=2,
            serverSelectionTimeoutMS=5000, connectTimeoutMS=3000, socketTimeoutMS=15000, appname="baseline",
        )  # fmt: skip
    return _mongo[database][collection]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["resource"] == "/link":
        items = boto3.client("dynamodb").scan(TableName=os.environ["LINKS_TABLE"], Limit=100)["Items"]
        body = json.dumps([{k: v["S"] for k, v in item.items()} for item in items])
    else:
        params = event["pathParameters"]
        query = event["queryStringParameters"] or {}
        flt = json_util.loads(query.get("filter", "{}"))
        documents = list(_collection(params["db"], params["collection"]).find(flt).sort("_id").limit(100))
        body = json_util.dumps(documents, json_options=json_util.RELAXED_JSON_OPTIONS)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}
