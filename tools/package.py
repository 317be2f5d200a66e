"""Build the deployable package: a CloudFormation (SAM) template and deployment.zip.

    python -m tools.package [--stage prod] [--out build/package]

Runs ``chalice package --merge-template infra/resources.json`` for the stage,
then makes that stage the default of the template's ``ChaliceStage``
parameter, so the template deploys with no parameters, and writes each
table's key schema in from chalicelib/tables/schema.py.
Nothing here talks to AWS; Chalice fetches Lambda-compatible wheels from PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from chalicelib.tables.schema import TABLES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MERGE_TEMPLATE = ROOT / "infra" / "resources.json"
TEMPLATE_NAME = "sam.json"
ZIP_NAME = "deployment.zip"
CA_BUNDLE = ROOT / "vendor" / "global-bundle.pem"


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
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    return template_path


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
