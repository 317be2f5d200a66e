"""Build the deployable package: a CloudFormation (SAM) template and deployment.zip.

    python -m tools.package [--stage prod] [--out build/package]

Runs ``chalice package --merge-template infra/resources.json`` for the stage,
then makes that stage the default of the template's ``ChaliceStage``
parameter, so the template deploys with no parameters; writes each table's
key schema in from chalicelib/tables/schema.py; points API Gateway at the API
handler's alias, which provisioned concurrency needs (see
:func:`route_to_alias`); and adds bytecode to deployment.zip (see
:func:`add_bytecode`).
Nothing here talks to AWS; Chalice fetches Lambda-compatible wheels from PyPI.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from chalicelib.tables.schema import TABLES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MERGE_TEMPLATE = ROOT / "infra" / "resources.json"
TEMPLATE_NAME = "sam.json"
ZIP_NAME = "deployment.zip"
CA_BUNDLE = ROOT / "vendor" / "global-bundle.pem"
# Never imported by the app (dnspython serves only mongodb+srv:// URIs, gridfs
# only GridFS): their bytecode would cost package size and save no cold start.
# The resource SAM generates for AutoPublishAlias "live" on APIHandler.
ALIAS_RESOURCE = "APIHandlerAliaslive"
NO_BYTECODE = re.compile(r"(^|/)(dns|gridfs)/")


def chalice_env() -> dict[str, str]:
    """The environment for ``chalice package``: a region, and nothing pointing at a local endpoint."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL" and not k.startswith("AWS_ENDPOINT_URL_")}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice needs one to name service principals
    return env


def package(stage: str, out: Path) -> Path:
    """Package ``stage`` into ``out`` (replaced); returns the template's path."""
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    allowed = json.loads(MERGE_TEMPLATE.read_text())["Parameters"]["ChaliceStage"]["AllowedValues"]
    if stage not in stages or stage not in allowed:
        raise SystemExit(f"{stage!r} is not a stage both .chalice/config.json and infra/resources.json define")
    out = out.resolve()
    if out.exists():
        strangers = {p.name for p in out.iterdir()} - {TEMPLATE_NAME, ZIP_NAME}
        if strangers:
            raise SystemExit(f"{out} holds more than a package ({', '.join(sorted(strangers))}); choose another --out")
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(BIN / "chalice"), "package",
            "--stage", stage,
            "--merge-template", str(MERGE_TEMPLATE),
            str(out),
        ],
        cwd=ROOT,
        env=chalice_env(),
        check=True,
    )  # fmt: skip
    template_path = out / TEMPLATE_NAME
    template = json.loads(template_path.read_text())
    template["Parameters"]["ChaliceStage"]["Default"] = stage
    for table in TABLES:  # the key schema is written once, in chalicelib/tables/schema.py
        template["Resources"][table.resource]["Properties"].update(table.key_schema())
    route_to_alias(template)
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    add_bytecode(out / ZIP_NAME, template["Resources"]["APIHandler"]["Properties"]["Runtime"])
    return template_path


def route_to_alias(template: dict[str, Any]) -> None:
    """Make API Gateway invoke the API handler's alias ``live`` rather than the function.

    Provisioned concurrency (infra/resources.json, ``ApiHandlerProvisionedConcurrency``)
    lives on a published version behind an alias; requests that invoke the
    unqualified function never reach it.  SAM publishes the version and the
    alias (``AutoPublishAlias``); this rewrites Chalice's integration URIs to
    the alias, whose invoke permission the merge template adds (SAM resolves
    ``APIHandler.Alias`` in a Ref, not inside an OpenAPI body's Fn::Sub, so the
    URIs name the resource SAM generates for the alias).  It also caps
    the parameter at the handler's reserved concurrency, which provisioned
    concurrency cannot exceed.
    """
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    rewritten = 0
    for operations in body["paths"].values():
        for operation in operations.values():
            uri = operation.get("x-amazon-apigateway-integration", {}).get("uri", {})
            if isinstance(uri, dict) and "${APIHandler.Arn}" in uri.get("Fn::Sub", ""):
                uri["Fn::Sub"] = uri["Fn::Sub"].replace("${APIHandler.Arn}", "${" + ALIAS_RESOURCE + "}")
                rewritten += 1
    if not rewritten:
        raise SystemExit("no API Gateway integration with the API handler found to point at its alias")
    reserved = template["Resources"]["APIHandler"]["Properties"].get("ReservedConcurrentExecutions")
    if reserved is not None:
        template["Parameters"]["ApiHandlerProvisionedConcurrency"]["MaxValue"] = reserved


def _unused_async_modules(task: Path) -> re.Pattern[str] | None:
    """The modules of pymongo.asynchronous that ``import pymongo`` does not load (the app never uses the rest).

    Asked of this Python with the unzipped package first on the path; their
    bytecode would only take room in the 3 MB the package is held to.
    """
    probe = "import sys, pymongo; print('\\n'.join(m for m in sys.modules if m.startswith('pymongo.asynchronous')))"
    # -B: the probe must not leave timestamp-based .pyc files behind for compileall to keep.
    done = subprocess.run([sys.executable, "-I", "-B", "-c", f"import sys; sys.path.insert(0, {str(task)!r}); {probe}"],
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    loaded = {line.strip() for line in done.stdout.splitlines() if line.strip()}
    unused = [
        module.relative_to(task).as_posix()
        for module in sorted((task / "pymongo" / "asynchronous").glob("*.py"))
        if f"pymongo.asynchronous.{module.stem}" not in loaded and module.stem != "__init__"
    ]
    return re.compile("|".join(re.escape(path) + "$" for path in unused)) if unused else None


def add_bytecode(zip_path: Path, runtime: str) -> int:
    """Add ``__pycache__/*.pyc`` for the package's modules to the zip; returns how many.

    Lambda's /var/task is read-only, so without bytecode in the zip every cold
    start compiles every module it imports (pymongo alone is ~250 ms of a
    first docdb request).  The bytecode is unchecked-hash based: Python uses
    it without comparing timestamps, which a zip does not keep faithfully.
    It is valid only for the Python that wrote it, so it is written only when
    this Python is the function's runtime (``python3.11``).
    """
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        print(f"warning: packaging with {here} for a {runtime} function: no bytecode added", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="docdb-rest-bytecode-") as tmp:
        task = Path(tmp)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task)
        skip = _unused_async_modules(task)
        compileall.compile_dir(
            task, quiet=1, ddir="/var/task", workers=1,
            rx=re.compile(f"{NO_BYTECODE.pattern}|{skip.pattern}" if skip else NO_BYTECODE.pattern),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )  # fmt: skip
        written = sorted(task.rglob("__pycache__/*.pyc"))
        with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for pyc in written:
                archive.write(pyc, pyc.relative_to(task).as_posix())
    return len(written)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="prod", help="a stage of .chalice/config.json (default prod)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "package", help="output directory (replaced)")
    args = parser.parse_args(argv)
    template = package(args.stage, args.out)
    size = (template.parent / ZIP_NAME).stat().st_size
    print(f"{template}\n{template.parent / ZIP_NAME} ({size / 1e6:.2f} MB)")
    if not CA_BUNDLE.is_file():
        print(
            f"warning: {CA_BUNDLE.relative_to(ROOT)} is missing, so this package cannot verify DocumentDB's TLS "
            "certificate; download https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem there "
            "and package again before deploying",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
