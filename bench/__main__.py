"""``make bench``: every performance figure against its target, in one run.

    python -m bench [--output FILE] [--skip-package]

Prints a Markdown table (ours, the baseline measured beside it, the ratio or
overhead, the target, whether it is met) after a description of the
machine.  Absolute times on a shared machine mean little; the ratios are
taken side by side in the same run, so they do.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from bench.timing import Row, table

PACKAGES = ("chalice", "botocore", "boto3", "pymongo", "orjson", "moto", "SecantusDB")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"- {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.system()} {platform.release()}\n"
        f"- CPU: {cpu}, {os.cpu_count()} cores; load average at start {load}\n"
        f"- Python {platform.python_version()}; {versions}"
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--skip-package", action="store_true", help="use the deployment.zip already built")
    args = parser.parse_args()

    started = time.monotonic()
    rows: list[Row] = []
    from bench import package

    if not args.skip_package:
        print("0. package (make package)…", flush=True)
        package.package_size(rows)
    if not package.ZIP.is_file():
        raise SystemExit(f"{package.ZIP} is missing: the cold starts run the package; run without --skip-package")
    print("starting moto and SecantusDB (TLS + SCRAM), seeding 10,100 links and 2,000 documents…", flush=True)
    from bench import stack

    with stack.backends() as backends:
        os.environ.update(backends.env())
        from bench import coldstart, idempotency, warm

        idempotency.listen()  # before the app's first DocumentDB request: it counts the commands each write sends
        h = warm.Harness(backends)
        print("1. warm requests…", flush=True)
        results = warm.warm_requests(h, rows)
        print("2. encoding…", flush=True)
        warm.encoding_speed(h, rows, results["find 1000"])
        print("   aggregation…", flush=True)
        from bench import aggregate

        aggregate.aggregation(h, rows, results["find 1000"])
        print("   documents by _id…", flush=True)
        from bench import documents

        documents.documents(h, rows)
        print("   Idempotency-Key…", flush=True)
        idempotency.idempotency_cost(h.call, h.app_module, rows)
        print("3. cold starts, from the unzipped package in a Python with only boto3…", flush=True)
        summary = coldstart.cold_starts(backends, rows, package.ZIP)
        print("4. scale and memory…", flush=True)
        warm.scale(h, rows)
        warm.memory(h, rows)
        print("   keep-alive on the local gateway…", flush=True)
        from bench import keepalive

        keepalive.keep_alive(backends, rows)
        print("6. the Data API's find…", flush=True)
        from bench import dataapi

        dataapi.data_api_find(h, backends, rows)
        h.mongo.close()

    rows.sort(key=lambda r: r.section)
    report = (
        f"{machine()}\n\n{table(rows)}\n\n"
        f"{coldstart.breakdown_report(summary)}\n\n"
        f"Run took {time.monotonic() - started:.0f} s.\n"
    )
    print("\n" + report)
    if args.output:
        args.output.write_text(report)
    missed = [r.figure.strip() for r in rows if r.met is False]
    print(f"targets missed: {', '.join(missed)}" if missed else "every target met")


if __name__ == "__main__":
    sys.exit(main())
