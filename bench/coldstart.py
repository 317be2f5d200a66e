"""Cold starts: fresh processes, ours against the straightforward baseline."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any
from urllib.parse import urlencode

from bench import stack
from bench.data import sku
from bench.timing import Row

TARGET_DOCDB = 0.75
TARGET_LINK = 0.5
RUNS = 9


def _once(which: str, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cold", which, json.dumps(event)],
        cwd=stack.ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"cold start of {which} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != 200:
        raise RuntimeError(f"cold start of {which} answered {result['status']}")
    return result


def cold_starts(backends: stack.Backends, rows: list[Row]) -> dict[str, dict[str, Any]]:
    env = {**os.environ, **backends.env(), "PYTHONPATH": str(stack.ROOT)}
    docdb = stack.docdb_event("GET", urlencode({"filter": json.dumps({"sku": sku(42)})}))
    link = stack.link_event()
    cases = {
        "app docdb": ("app", docdb),
        "baseline docdb": ("baseline", docdb),
        "app link": ("app", link),
        "baseline link": ("baseline", link),
        "probe link": ("probe", link),
    }
    for which, event in cases.values():  # compile bytecode once, as a deployed package would have it
        _once(which, event, env)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for i in range(RUNS):
        names = list(cases) if i % 2 == 0 else list(cases)[::-1]
        for name in names:
            runs[name].append(_once(*cases[name], env))
    summary = {
        name: {
            "total_ms": statistics.median(r["total_ms"] for r in results),
            "import_ms": statistics.median(r["import_ms"] for r in results),
            "first_ms": statistics.median(r["first_ms"] for r in results),
            "modules": results[0]["modules"],
            "heavy": results[0]["heavy"],
        }
        for name, results in runs.items()
    }
    base = summary["baseline docdb"]["total_ms"]
    for name, label, target in (
        ("app docdb", "first docdb GET", TARGET_DOCDB),
        ("app link", "first GET /link", TARGET_LINK),
    ):
        ours = summary[name]
        ratio = ours["total_ms"] / base
        rows.append(Row("3", f"cold start to {label}", _detail(ours), _detail(summary["baseline docdb"]),
                        f"{ratio:.2f}×", f"≤ {target}× baseline", ratio <= target))  # fmt: skip
    ours, theirs = summary["app link"], summary["baseline link"]
    rows.append(Row("3", "  GET /link vs a boto3 GET /link baseline", _detail(ours), _detail(theirs),
                    f"{ours['total_ms'] / theirs['total_ms']:.2f}×", "", None))  # fmt: skip
    probe = summary["probe link"]
    rows.append(Row("3", "  what-if: GET /link's scan without botocore", _detail(probe),
                    _detail(summary["baseline docdb"]), f"{probe['total_ms'] / base:.2f}×", "bench/sigv4_probe.py",
                    None))  # fmt: skip
    return summary


def _detail(s: dict[str, Any]) -> str:
    return f"{s['total_ms']:.0f} ms ({s['import_ms']:.0f} import + {s['first_ms']:.0f} first)"
