"""Add, change and remove API users in the users secret.

    python -m tools.users --secret-id ID add NAME --grant 'db/coll:rw' [--grant …]
    python -m tools.users --secret-id ID passwd NAME
    python -m tools.users --secret-id ID grant NAME 'db/*:r'
    python -m tools.users --secret-id ID revoke NAME 'db/*:r'
    python -m tools.users --secret-id ID remove NAME
    python -m tools.users --secret-id ID list
    python -m tools.users --secret-id ID create-key NAME [--label TEXT]
    python -m tools.users --secret-id ID list-keys [NAME]
    python -m tools.users --secret-id ID revoke-key KEY_ID

Passwords are prompted for (or read from the DOCDB_REST_PASSWORD environment
variable, for scripts) and stored only as salted scrypt hashes.  An API key
(for the Data API routes, ``apiKey`` header) acts as its user, with the
user's grants; create-key prints it once, and only its SHA-256 is stored.  AWS
credentials, region and AWS_ENDPOINT_URL come from the usual places.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from typing import Any

from chalicelib.auth import Grant, hash_password, new_api_key


def _password(name: str) -> str:
    password = os.environ.get("DOCDB_REST_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {name}: ")
        if password != getpass.getpass("again: "):
            raise SystemExit("the passwords differ")
    if len(password) < 8:
        raise SystemExit("a password needs at least 8 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise SystemExit("a password may not contain control characters (HTTP Basic cannot carry them)")
    return password


def _grant(text: str) -> str:
    try:
        return str(Grant.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def load(client: Any, secret_id: str) -> dict[str, Any]:
    try:
        value = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    except client.exceptions.ResourceNotFoundException:
        return {"users": {}}
    value.setdefault("users", {})
    return value


def save(client: Any, secret_id: str, value: dict[str, Any]) -> None:
    text = json.dumps(value, indent=1, sort_keys=True)
    try:
        client.put_secret_value(SecretId=secret_id, SecretString=text)
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=secret_id, SecretString=text, Description="docdb-rest API users")


def apply(value: dict[str, Any], args: argparse.Namespace) -> str:
    """Change ``value`` as the command says; returns what to print."""
    users = value["users"]
    if args.command == "list":
        return "\n".join(f"{name}\t{' '.join(u.get('grants', []))}" for name, u in sorted(users.items()))
    if args.command == "list-keys":
        return "\n".join(
            f"{record.get('id')}\t{name}\t{record.get('created', '')}\t{record.get('label', '')}"
            for name, u in sorted(users.items())
            if args.name in (None, name)
            for record in u.get("api_keys", [])
        )
    if args.command == "revoke-key":
        for name, u in users.items():
            kept = [r for r in u.get("api_keys", []) if r.get("id") != args.key_id]
            if len(kept) != len(u.get("api_keys", [])):
                u["api_keys"] = kept
                return f"revoke-key {args.key_id} of {name}: done"
        raise SystemExit(f"no API key {args.key_id!r}")
    if args.command != "add" and args.name not in users:
        raise SystemExit(f"no user {args.name!r}")
    if args.command == "add":
        if args.name in users:
            raise SystemExit(f"{args.name!r} exists already; use passwd or grant")
        if ":" in args.name or not args.name:
            raise SystemExit("a user name may not be empty or contain ':'")
        users[args.name] = {"password": hash_password(_password(args.name)), "grants": args.grant or []}
    elif args.command == "passwd":
        users[args.name]["password"] = hash_password(_password(args.name))
    elif args.command == "grant":
        grants = users[args.name].setdefault("grants", [])
        if args.grant_text not in grants:
            grants.append(args.grant_text)
    elif args.command == "revoke":
        users[args.name]["grants"] = [g for g in users[args.name].get("grants", []) if g != args.grant_text]
    elif args.command == "remove":
        del users[args.name]
    elif args.command == "create-key":
        import datetime

        key, record = new_api_key()
        record["created"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        if args.label:
            record["label"] = args.label
        users[args.name].setdefault("api_keys", []).append(record)
        return (
            f"API key {record['id']} for {args.name} (shown only now; keep it secret):\n{key}"
        )
    return f"{args.command} {args.name}: done"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.users", description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-id", default=os.environ.get("API_USERS_SECRET_ID"), required=False)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add")
    add.add_argument("name")
    add.add_argument("--grant", action="append", type=_grant, help="database/collection:r or :rw (repeatable)")
    for name in ("passwd", "remove"):
        sub.add_parser(name).add_argument("name")
    for name in ("grant", "revoke"):
        cmd = sub.add_parser(name)
        cmd.add_argument("name")
        cmd.add_argument("grant_text", type=_grant)
    sub.add_parser("list")
    create_key = sub.add_parser("create-key", help="print a new API key for NAME (shown once)")
    create_key.add_argument("name")
    create_key.add_argument("--label", help="a note to tell keys apart in list-keys")
    sub.add_parser("list-keys").add_argument("name", nargs="?")
    sub.add_parser("revoke-key").add_argument("key_id")
    args = parser.parse_args(argv)
    if not args.secret_id:
        parser.error("--secret-id (or API_USERS_SECRET_ID) is required")

    import boto3

    client = boto3.client("secretsmanager")
    value = load(client, args.secret_id)
    message = apply(value, args)
    if args.command not in ("list", "list-keys"):
        save(client, args.secret_id, value)
    print(message)


if __name__ == "__main__":
    main()
