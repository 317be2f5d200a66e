"""The Lambda package on its own, as Lambda would run it.

The package is built once per session by the command ``make package`` runs
(``python -m tools.package``), under build/test-package/.  It is unzipped and
imported in a fresh, isolated Python whose only third-party package is boto3
with its dependencies (what the Lambda runtime provides), then invoked with
API Gateway events against moto and the TLS+SCRAM SecantusDB.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tools import lambda_runtime as lambda_runtime_module
from tools import local_stack

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "test-package"
MAX_ZIP_BYTES = 3_000_000
# Never in the zip: the Lambda runtime's own SDK, and anything only developers use.
FORBIDDEN_TOP_LEVEL = {
    "boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six",
    "moto", "pytest", "_pytest", "pluggy", "ruff", "secantus", "wiredtiger", "trustme", "cfnlint",
    "flask", "werkzeug", "cryptography", "yaml", "click",
    "tests", "tools", "infra", "bench", ".chalice", ".local", ".venv", "build",
}  # fmt: skip

pytestmark = pytest.mark.package

_BUILT: dict[str, Path] = {}


def build_package(stage: str) -> Path:
    """The directory holding sam.json and deployment.zip for ``stage``, built once per session."""
    if stage not in _BUILT:
        out = BUILD / stage
        result = subprocess.run(
            [sys.executable, "-m", "tools.package", "--stage", stage, "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"packaging {stage} failed:\n{result.stdout}\n{result.stderr}"
        _BUILT[stage] = out
    return _BUILT[stage]


@pytest.fixture(scope="session")
def prod_package() -> Path:
    return build_package("prod")


@pytest.fixture(scope="session")
def zip_names(prod_package: Path) -> list[str]:
    with zipfile.ZipFile(prod_package / "deployment.zip") as archive:
        return archive.namelist()


def top_level(names: list[str]) -> set[str]:
    """Top-level modules in the zip, with ``name-1.0.dist-info`` folded to ``name``."""
    tops = {name.split("/", 1)[0] for name in names}
    return {re.sub(r"-[^-]+\.dist-info$", "", top).lower().replace("-", "_") for top in tops}


# --- what the zip holds ------------------------------------------------------


def test_deployment_zip_stays_under_3_mb(prod_package: Path) -> None:
    size = (prod_package / "deployment.zip").stat().st_size
    assert size < MAX_ZIP_BYTES, f"deployment.zip is {size / 1e6:.2f} MB"


def test_deployment_zip_bundles_no_boto3_and_no_dev_tools(zip_names: list[str]) -> None:
    assert not top_level(zip_names) & FORBIDDEN_TOP_LEVEL
    chalice_files = {name for name in zip_names if name.startswith("chalice/") and "/__pycache__/" not in name}
    assert chalice_files == {"chalice/__init__.py", "chalice/app.py"}, "only Chalice's runtime belongs in Lambda"


def test_deployment_zip_holds_the_app_and_what_lambda_lacks(zip_names: list[str]) -> None:
    assert {"app.py", "chalicelib/__init__.py", "chalicelib/docdb/client.py"} <= set(zip_names)
    assert {"pymongo", "bson", "orjson", "dns"} <= top_level(zip_names)
    # Compiled for Lambda (manylinux, this Python), not whatever the build machine runs.
    abi = f"cpython-{sys.version_info.major}{sys.version_info.minor}-x86_64-linux-gnu.so"
    assert any(name.startswith("orjson/") and name.endswith(abi) for name in zip_names)


def test_deployment_zip_carries_bytecode_lambda_can_use_without_checking_sources(zip_names: list[str]) -> None:
    # /var/task is read-only: without it, every cold start compiles every module it imports.
    tag = sys.implementation.cache_tag
    expected = {f"__pycache__/app.{tag}.pyc", f"chalicelib/docdb/__pycache__/client.{tag}.pyc",
                f"pymongo/__pycache__/__init__.{tag}.pyc", f"bson/__pycache__/__init__.{tag}.pyc",
                f"chalice/__pycache__/app.{tag}.pyc"}  # fmt: skip
    assert expected <= set(zip_names)
    assert not [name for name in zip_names if name.startswith(("dns/", "gridfs/")) and name.endswith(".pyc")]


def test_deployment_bytecode_is_unchecked_hash_based(prod_package: Path) -> None:
    # Every .pyc, not one: a timestamp-based one (flags 0) is recompiled at each cold start, since a zip
    # does not keep the sources' timestamps faithfully.
    with zipfile.ZipFile(prod_package / "deployment.zip") as archive:
        headers = {name: archive.read(name)[:16] for name in archive.namelist() if name.endswith(".pyc")}
    assert f"__pycache__/app.{sys.implementation.cache_tag}.pyc" in headers
    assert {name for name, header in headers.items() if header[:4] != importlib.util.MAGIC_NUMBER} == set()
    flags = {name: int.from_bytes(header[4:8], "little") for name, header in headers.items()}
    assert {name: f for name, f in flags.items() if f != 0b01} == {}  # hash-based, not checked against the source


# --- the package running on its own ------------------------------------------

DRIVER = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys

    package_dir, runtime_dir, events_file = sys.argv[1:4]


    class Context:
        function_name = "docdb-rest-prod-api_handler"
        memory_limit_in_mb = 512
        aws_request_id = "00000000-0000-4000-8000-000000000000"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docdb-rest-prod-api_handler"

        def get_remaining_time_in_millis(self):
            return 25000


    def handler(spec):
        module, _, attr = spec.rpartition(".")
        return getattr(importlib.import_module(module), attr)


    results = {}
    for name, spec, event in json.load(open(events_file)):
        try:
            results[name] = {"ok": handler(spec)(event, Context())}
        except Exception as exc:
            results[name] = {"error": type(exc).__name__, "message": str(exc)}

    from chalicelib.docdb.client import find_ca_file

    try:
        ca_file = find_ca_file("global-bundle.pem")
    except Exception as exc:
        ca_file = repr(exc)
    loaded = ("pymongo", "bson", "orjson", "chalice", "app", "botocore")
    absent = ("moto", "pytest", "secantus", "trustme", "chalice.local")
    print(json.dumps({
        "results": results,
        "files": {m: getattr(sys.modules.get(m), "__file__", None) for m in loaded},
        "importable": {m: importlib.util.find_spec(m) is not None for m in absent},
        "ca_file": ca_file,
        "sys_path": sys.path,
    }))
    """
)


@pytest.fixture(scope="session")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of symlinks to boto3 and its dependencies, and nothing else."""
    return lambda_runtime_module.build_runtime(tmp_path_factory.mktemp("lambda-runtime"))


proxy_event = lambda_runtime_module.proxy_event
token_event = lambda_runtime_module.token_event


@pytest.fixture(scope="module")
def standalone(
    stack: Any, prod_package: Path, lambda_runtime: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Unzip the package, run its handlers in an isolated Python, and return what it reported."""
    work = tmp_path_factory.mktemp("standalone")
    package_dir = work / "task"
    lambda_runtime_module.unpack(prod_package / "deployment.zip", package_dir)
    # The operator's CA bundle sits at the package root (from vendor/); here, the local CA.
    shutil.copyfile(stack.secantus.ca_file, package_dir / "global-bundle.pem")

    link_id = str(uuid.uuid4())
    stack.dynamodb.put_item(
        TableName=local_stack.LINKS_TABLE,
        Item={"link_id": {"S": link_id}, "link": {"S": "https://example.com/standalone"}},
    )
    collection = f"standalone_{uuid.uuid4().hex[:12]}"
    stack.mongo["blog"][collection].insert_one({"name": "brian", "rating": 5})

    template = json.loads((prod_package / "sam.json").read_text())
    api = template["Resources"]["APIHandler"]["Properties"]["Handler"]
    authorizer = template["Resources"]["BasicAuth"]["Properties"]["Handler"]
    grants = {"principalId": "apiuser", "grants": "*/*:rw"}
    events = [
        ("list_links", api, proxy_event("GET", "/link", "/link")),
        ("get_link", api, proxy_event("GET", "/link/{link_id}", f"/link/{link_id}", {"link_id": link_id})),
        ("docdb_find", api, proxy_event("GET", "/docdb/{db}/{collection}", f"/docdb/blog/{collection}",
                                        {"db": "blog", "collection": collection}, grants)),
        ("auth_ok", authorizer, token_event("apiuser", "apipassword")),
        ("auth_wrong_password", authorizer, token_event("apiuser", "not-the-password")),
    ]  # fmt: skip
    events_file = work / "events.json"
    events_file.write_text(json.dumps(events))
    driver = work / "driver.py"
    driver.write_text(lambda_runtime_module.PATH_SETUP + DRIVER)

    env = {
        **local_stack.aws_env(stack.moto.endpoint),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "LINKS_TABLE": local_stack.LINKS_TABLE,
        "MOVIES_TABLE": local_stack.MOVIES_TABLE,
        "DOCDB_SECRET_ID": local_stack.DOCDB_SECRET_ID,
        "API_USERS_SECRET_ID": local_stack.USERS_SECRET_ID,
        # DOCDB_CA_FILE unset: the default name must be found at the package root.
    }
    result = subprocess.run(
        lambda_runtime_module.isolated_python(driver, str(package_dir), str(lambda_runtime), str(events_file)),
        cwd=work,  # not the package root, so the CA is found by the package-root lookup
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report.update(package_dir=str(package_dir.resolve()), runtime_dir=str(lambda_runtime), link_id=link_id)
    return report


def _ok(report: dict[str, Any], name: str) -> Any:
    outcome = report["results"][name]
    assert "ok" in outcome, f"{name} raised {outcome}"
    return outcome["ok"]


def test_package_lists_links_against_moto(standalone: dict[str, Any]) -> None:
    response = _ok(standalone, "list_links")
    assert response["statusCode"] == 200, response
    assert isinstance(json.loads(response["body"]), list)


def test_package_reads_one_link_against_moto(standalone: dict[str, Any]) -> None:
    response = _ok(standalone, "get_link")
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"link_id": standalone["link_id"], "link": "https://example.com/standalone"}


def test_package_reads_documentdb_over_tls_with_scram(standalone: dict[str, Any]) -> None:
    response = _ok(standalone, "docdb_find")
    assert response["statusCode"] == 200, response
    documents = json.loads(response["body"])
    assert [{k: v for k, v in d.items() if k != "_id"} for d in documents] == [{"name": "brian", "rating": 5}]


def test_package_finds_the_ca_bundle_at_the_package_root(standalone: dict[str, Any]) -> None:
    assert standalone["ca_file"] == str(Path(standalone["package_dir"]) / "global-bundle.pem")


def test_package_authorizer_allows_a_valid_user_with_grants_as_context(standalone: dict[str, Any]) -> None:
    policy = _ok(standalone, "auth_ok")
    assert policy["principalId"] == "apiuser"
    assert policy["context"] == {"grants": "*/*:rw"}  # API Gateway context values must be strings
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_package_authorizer_refuses_a_wrong_password_as_api_gateway_expects(standalone: dict[str, Any]) -> None:
    # Exactly "Unauthorized" is what API Gateway turns into a 401; anything else is a 5xx.
    assert standalone["results"]["auth_wrong_password"] == {"error": "Exception", "message": "Unauthorized"}


def test_package_uses_its_own_dependencies_and_only_boto3_from_the_runtime(standalone: dict[str, Any]) -> None:
    package_dir = Path(standalone["package_dir"])
    for module in ("pymongo", "bson", "orjson", "chalice", "app"):
        assert Path(standalone["files"][module]).resolve().is_relative_to(package_dir), module
    assert standalone["files"]["botocore"].startswith(standalone["runtime_dir"])
    assert not any(standalone["importable"].values()), standalone["importable"]
    assert not [p for p in standalone["sys_path"] if p.rstrip("/").endswith("site-packages")]
