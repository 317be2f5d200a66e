"""Running the deployment package the way Lambda runs it, on this machine.

The Python runtime of Lambda holds the standard library and boto3 (with
botocore, jmespath, dateutil, urllib3, s3transfer) and nothing else; the
function's own dependencies come from the unzipped ``deployment.zip`` at
``/var/task``.  :func:`build_runtime` makes a directory holding exactly
boto3's closure (symlinks into this venv), and :func:`isolated_python` the
command that runs a script with no site-packages at all, so a script sees the
package first and then that directory, as a function does in Lambda.

Used by the package tests (tests/test_package.py) and by ``make bench``'s
cold starts (bench/coldstart.py), so both measure and check one environment.
Also the API Gateway events both send.
"""

from __future__ import annotations

import base64
import importlib.metadata
import re
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

RUNTIME_MODULES = {"boto3", "botocore", "jmespath", "dateutil", "urllib3"}


def boto3_closure() -> set[str]:
    """boto3 and the distributions it needs (extras excluded), as the Lambda runtime has them."""
    todo, seen = ["boto3"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in importlib.metadata.requires(name) or []:
            if ";" not in requirement:  # extras and markers: not in Lambda either
                todo.append(re.split(r"[\s<>=!~\[(]", requirement.strip(), maxsplit=1)[0])
    return seen


def build_runtime(runtime: Path) -> Path:
    """Fill ``runtime`` with symlinks to boto3 and its dependencies, and nothing else."""
    runtime.mkdir(parents=True, exist_ok=True)
    for dist_name in boto3_closure():
        dist = importlib.metadata.distribution(dist_name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__", "bin"}:
            target = Path(str(dist.locate_file(top)))
            if not (runtime / top).exists():
                (runtime / top).symlink_to(target, target_is_directory=target.is_dir())
    missing = RUNTIME_MODULES - {p.name for p in runtime.iterdir()}
    if missing:
        raise RuntimeError(f"the runtime directory lacks {', '.join(sorted(missing))}")
    return runtime


def unpack(zip_path: Path, task_dir: Path) -> Path:
    """Unzip the package into ``task_dir`` (Lambda's /var/task)."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_dir)
    return task_dir


def isolated_python(script: Path | str, *args: str, options: tuple[str, ...] = ()) -> list[str]:
    """The command running ``script`` in this interpreter with no environment, user site or site-packages.

    ``-I``: no PYTHON* variables, no script directory on the path, no user
    site; ``-S``: no site-packages.  The script puts the package and the
    runtime directory on ``sys.path`` itself (see :data:`PATH_SETUP`).
    """
    return [sys.executable, "-I", "-S", *options, str(script), *args]


# The first lines of every script run by isolated_python: argv[1] is the
# package (/var/task), argv[2] the runtime directory; they go first, in that order.
PATH_SETUP = "import sys\nsys.path[:0] = [sys.argv[1], sys.argv[2]]\n"


def proxy_event(
    method: str,
    resource: str,
    path: str,
    path_parameters: dict[str, str] | None = None,
    authorizer: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API (payload 1.0) Lambda proxy event, as API Gateway sends it."""
    headers = {"Accept": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    context: dict[str, Any] = {
        "resourcePath": resource, "httpMethod": method, "path": f"/api{path}", "stage": "api",
        "requestId": str(uuid.uuid4()), "accountId": "123456789012", "apiId": "abc123",
        "identity": {"sourceIp": "192.0.2.10"},
    }  # fmt: skip
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": context, "body": None, "isBase64Encoded": False,
    }  # fmt: skip


def token_event(user: str, password: str) -> dict[str, str]:
    """A TOKEN authorizer event for ``Authorization: Basic …``."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {
        "type": "TOKEN",
        "authorizationToken": f"Basic {token}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/api/GET/docdb/blog/test",
    }
