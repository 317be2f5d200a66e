"""Create the app's DynamoDB tables, or bring existing ones up to the same settings.

    python -m tools.create_tables --stage prod     # the names in .chalice/config.json
    python -m tools.create_tables                  # the names in LINKS_TABLE, MOVIES_TABLE, IDEMPOTENCY_TABLE

For the ``chalice deploy`` path (the packaged CloudFormation template creates
its own tables).  Safe to run again: a missing table is created, an existing
one is switched to on-demand billing, KMS encryption and point-in-time
recovery if it lacks them (and TTL on the idempotency table's ``expires_at``),
and nothing else is touched.  Deletion protection
is on for ``prod`` unless ``--no-deletion-protection`` says otherwise.  AWS
credentials, region and AWS_ENDPOINT_URL come from the usual places.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from chalicelib.tables.schema import TABLES as APP_TABLES
from chalicelib.tables.schema import key_schema

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".chalice" / "config.json"
# (environment variable, partition key) for each table the app uses.
TABLES = tuple((table.setting, table.key) for table in APP_TABLES)


def table_names(stage: str | None, env: dict[str, str] | None = None) -> dict[str, str]:
    """{partition key: table name}, from the stage's config or the environment."""
    if stage is not None:
        stages = json.loads(CONFIG.read_text())["stages"]
        if stage not in stages:
            raise SystemExit(f"no stage {stage!r} in {CONFIG.relative_to(ROOT)}")
        env = stages[stage].get("environment_variables", {})
    elif env is None:
        env = dict(os.environ)
    missing = [var for var, _ in TABLES if not env.get(var)]
    if missing:
        where = f"stage {stage!r}" if stage else "the environment"
        raise SystemExit(f"{' and '.join(missing)} not set in {where}")
    return {key: env[var] for var, key in TABLES}


def ensure_table(client: Any, name: str, key: str, deletion_protection: bool) -> list[str]:
    """Create ``name`` or fix its settings; returns what was done."""
    done: list[str] = []
    try:
        table = client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        client.create_table(
            TableName=name,
            **key_schema(key),
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True, "SSEType": "KMS"},
            DeletionProtectionEnabled=deletion_protection,
        )
        done.append("created (on-demand, KMS encryption)")
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        table = client.describe_table(TableName=name)["Table"]
    else:
        schema = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
        if schema != [(key, "HASH")]:
            raise SystemExit(f"{name} exists with key {schema}, but the app needs a string partition key {key!r} only")
        if table.get("BillingModeSummary", {}).get("BillingMode") != "PAY_PER_REQUEST":
            client.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
            done.append("switched to on-demand billing")
            _wait_active(client, name)
        sse = table.get("SSEDescription", {})
        if sse.get("Status") not in ("ENABLED", "ENABLING") or sse.get("SSEType") != "KMS":
            client.update_table(TableName=name, SSESpecification={"Enabled": True, "SSEType": "KMS"})
            done.append("KMS encryption enabled")
            _wait_active(client, name)
        if deletion_protection and not table.get("DeletionProtectionEnabled", False):
            client.update_table(TableName=name, DeletionProtectionEnabled=True)
            done.append("deletion protection enabled")
            _wait_active(client, name)
    backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if pitr != "ENABLED":
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        done.append("point-in-time recovery enabled")
    return done


def ensure_ttl(client: Any, name: str, attribute: str) -> list[str]:
    """Turn on DynamoDB TTL on ``attribute`` unless it is on already; returns what was done."""
    ttl = client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName") == attribute:
        return []
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute})
    return [f"TTL on {attribute} enabled"]


def _wait_active(client: Any, name: str) -> None:
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.create_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", help="take the table names from this stage of .chalice/config.json")
    parser.add_argument(
        "--deletion-protection",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn on deletion protection (default: on for prod only)",
    )
    args = parser.parse_args(argv)
    names = table_names(args.stage)
    protect = args.deletion_protection if args.deletion_protection is not None else args.stage == "prod"

    import boto3

    client = boto3.client("dynamodb")
    ttl = {table.key: table.ttl for table in APP_TABLES if table.ttl}
    for key, name in names.items():
        done = ensure_table(client, name, key, protect)
        if key in ttl:
            done += ensure_ttl(client, name, ttl[key])
        print(f"{name}: {', '.join(done) if done else 'already as required'}")


if __name__ == "__main__":
    main()
