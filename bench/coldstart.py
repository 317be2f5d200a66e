"""Cold starts as Lambda pays them: the unzipped package in a Python that has only boto3.

Each cold start is a fresh isolated interpreter (tools/lambda_runtime.py, the
environment the package tests run in) importing a handler from the unzipped
``deployment.zip`` and serving one event.  Lambda's /var/task is read-only,
so Python can never cache bytecode there: ``-B`` does the same here.  Our
package ships its bytecode (tools/package.py); boto3 and botocore come
precompiled, as in Lambda's runtime.

The baselines are deployed the straightforward way: the same zip with the
same pymongo but without our bytecode (what ``chalice package`` or a plain
zip gives), running a straightforward boto3 + pymongo handler
(bench/baseline.py) and a straightforward boto3 authorizer
(bench/baseline_authorizer.py).  Two rows without a target take each change
apart: our handler without its bytecode, the baseline with it.  The
Parameters and Secrets extension is its local stand-in
(tools/secrets_extension.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import stack
from bench.data import sku
from bench.timing import Row
from tools import lambda_runtime, secrets_extension

TARGET_LINK = 0.6  # first GET /link, against the baseline's first GET /link
TARGET_DOCDB = 0.85  # first docdb GET, against the baseline's first docdb GET
TARGET_AUTHORIZER = 0.5  # authorizer, import + first check, against a boto3 authorizer
TARGET_HEALTH = 0.3  # /health, against the baseline's first request (its docdb GET)
RUNS = 9
TOP = 15
SCRIPT = stack.ROOT / "bench" / "cold.py"
TOKEN = "bench-session-token"
EXTENSION_PORT = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"


def _command(task: Path, runtime: Path, spec: str, event: dict[str, Any], importtime: bool = False) -> list[str]:
    options = ("-B", "-X", "importtime") if importtime else ("-B",)
    return lambda_runtime.isolated_python(SCRIPT, str(task), str(runtime), spec, json.dumps(event), options=options)


def _once(command: list[str], env: dict[str, str], ok: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cold start {command[-2]} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if str(result["outcome"]) != ok:
        raise RuntimeError(f"cold start {command[-2]} answered {result['outcome']}, not {ok}")
    return result, done.stderr


def import_breakdown(stderr: str, top: int = TOP) -> list[tuple[str, float]]:
    """Self time of ``-X importtime`` lines after the marker, summed by top-level package (ms)."""
    _, _, after = stderr.partition("-- handler import starts --")
    totals: dict[str, float] = defaultdict(float)
    for match in re.finditer(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", after, re.M):
        totals[match.group(2).partition(".")[0]] += int(match.group(1)) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def cold_starts(backends: stack.Backends, rows: list[Row], zip_path: Path) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="docdb-rest-cold-") as tmp:
        task = lambda_runtime.unpack(zip_path, Path(tmp) / "task")
        plain = lambda_runtime.unpack(zip_path, Path(tmp) / "plain")
        for cache in list(plain.rglob("__pycache__")):
            shutil.rmtree(cache)
        for name in ("baseline.py", "baseline_authorizer.py"):  # beside the app, with the package's pymongo
            shutil.copyfile(stack.ROOT / "bench" / name, task / name)
            shutil.copyfile(stack.ROOT / "bench" / name, plain / name)
        runtime = lambda_runtime.build_runtime(Path(tmp) / "runtime")
        env = {
            **{k: v for k, v in backends.env().items()},
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        with secrets_extension.running(backends.moto.endpoint, TOKEN) as extension:
            with_extension = {**env, EXTENSION_PORT: str(extension.port), "AWS_SESSION_TOKEN": TOKEN}
            summary = _measure(task, plain, runtime, env, with_extension)
    _rows(summary, rows)
    return summary


def _measure(
    task: Path, plain: Path, runtime: Path, env: dict[str, str], with_extension: dict[str, str]
) -> dict[str, Any]:
    docdb = stack.docdb_event("GET", urlencode({"filter": json.dumps({"sku": sku(42)})}))
    link = stack.link_event()
    health = stack.event("GET", "/health", "/health")
    token = lambda_runtime.token_event(stack.API_USER[0], stack.API_USER[1])
    cases: dict[str, tuple[Path, str, dict[str, Any], dict[str, str], str]] = {
        "app docdb": (task, "app.app", docdb, env, "200"),
        "app docdb + extension": (task, "app.app", docdb, with_extension, "200"),
        "app docdb, no bytecode": (plain, "app.app", docdb, env, "200"),
        "baseline docdb": (plain, "baseline.handler", docdb, env, "200"),
        "baseline docdb, with bytecode": (task, "baseline.handler", docdb, env, "200"),
        "app link": (task, "app.app", link, env, "200"),
        "baseline link": (plain, "baseline.handler", link, env, "200"),
        "app health": (task, "app.app", health, env, "200"),
        "app authorizer": (task, "app.basic_auth", token, env, "allow"),
        "app authorizer + extension": (task, "app.basic_auth", token, with_extension, "allow"),
        "baseline authorizer": (plain, "baseline_authorizer.handler", token, env, "allow"),
    }
    shipped = sorted(task.rglob("*.pyc"))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    breakdown: dict[str, list[tuple[str, float]]] = {}
    for name, (where, spec, event, case_env, ok) in cases.items():  # a run to warm the OS cache, then importtime
        _once(_command(where, runtime, spec, event), case_env, ok)
        breakdown[name] = import_breakdown(_once(_command(where, runtime, spec, event, True), case_env, ok)[1])
    for i in range(RUNS):
        names = list(cases) if i % 2 == 0 else list(cases)[::-1]
        for name in names:
            where, spec, event, case_env, ok = cases[name]
            runs[name].append(_once(_command(where, runtime, spec, event), case_env, ok)[0])
    if any(plain.rglob("*.pyc")) or sorted(task.rglob("*.pyc")) != shipped:
        raise RuntimeError("bytecode was written into a package; cold starts would not compile as Lambda's do")
    return {
        name: {
            "total_ms": statistics.median(r["total_ms"] for r in results),
            "import_ms": statistics.median(r["import_ms"] for r in results),
            "first_ms": statistics.median(r["first_ms"] for r in results),
            "modules": results[0]["modules"],
            "heavy": results[0]["heavy"],
            "breakdown": breakdown[name],
        }
        for name, results in runs.items()
    }


def _rows(s: dict[str, Any], rows: list[Row]) -> None:
    def row(label: str, ours: str, theirs: str, target: float | None) -> None:
        ratio = s[ours]["total_ms"] / s[theirs]["total_ms"]
        met = None if target is None else ratio <= target
        rows.append(Row("3", label, _detail(s[ours]), f"{_detail(s[theirs])} ({theirs})", f"{ratio:.2f}×",
                        f"≤ {target}×" if target is not None else "", met))  # fmt: skip

    row("cold start to first GET /link", "app link", "baseline link", TARGET_LINK)
    row("cold start to first docdb GET", "app docdb", "baseline docdb", TARGET_DOCDB)
    row("  the same, secrets through the extension", "app docdb + extension", "baseline docdb", TARGET_DOCDB)
    row("  ours without the package's bytecode", "app docdb, no bytecode", "baseline docdb", None)
    row("  the baseline with our bytecode", "app docdb", "baseline docdb, with bytecode", None)
    row("authorizer cold start (import + first check)", "app authorizer", "baseline authorizer", TARGET_AUTHORIZER)
    row("  the same, secrets through the extension", "app authorizer + extension", "baseline authorizer",
        TARGET_AUTHORIZER)  # fmt: skip
    scrypt = _scrypt_ms()
    rows.append(Row("3", "  of which one scrypt check, in both", f"{scrypt:.0f} ms", "", "", "", None))
    row("cold start to /health", "app health", "baseline docdb", TARGET_HEALTH)


def _scrypt_ms(reps: int = 5) -> float:
    """One password check at the users secret's parameters (median; this process, warm)."""
    from chalicelib.auth import hash_password, verify_password

    encoded = hash_password("bench-password")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        verify_password("bench-password", encoded)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _detail(s: dict[str, Any]) -> str:
    return f"{s['total_ms']:.0f} ms ({s['import_ms']:.0f} import + {s['first_ms']:.0f} first)"


def breakdown_report(summary: dict[str, Any]) -> str:
    """Per cold start: the heavy packages it imported and its top import costs (``-X importtime``, self time)."""
    lines = [f"Import time by top-level package (`-X importtime`, self ms, top {TOP}; one run, so read the order):", ""]
    for name, s in summary.items():
        parts = ", ".join(f"{pkg} {ms:.1f}" for pkg, ms in s["breakdown"])
        lines.append(f"- **{name}** (heavy: {', '.join(s['heavy']) or 'none'}): {parts}")
    return "\n".join(lines)
