"""The size of the deployment package, built the way ``make package`` builds it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.stack import ROOT
from bench.timing import Row

TARGET_MB = 3.0
ZIP = ROOT / "build" / "package" / "deployment.zip"


def _has_make_target(name: str) -> bool:
    makefile = ROOT / "Makefile"
    return makefile.is_file() and re.search(rf"^{re.escape(name)}\s*:", makefile.read_text(), re.M) is not None


def build() -> str:
    """Build the package; returns how, or raises with the tool's output."""
    if _has_make_target("package"):
        command = ["make", "--no-print-directory", "package"]
    else:
        command = [str(Path(sys.executable).parent / "chalice"), "package", "--stage", "dev", "build/package"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return "make package" if command[0] == "make" else "chalice package"


def package_size(rows: list[Row]) -> None:
    try:
        how = build()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"package not built: {exc}", file=sys.stderr)
        rows.append(Row("5", "deployment.zip", "not built", "", "", f"≤ {TARGET_MB:g} MB", False))
        return
    size = ZIP.stat().st_size / 1e6 if ZIP.is_file() else None
    if size is None:
        rows.append(Row("5", "deployment.zip", f"not found after {how}", "", "", f"≤ {TARGET_MB:g} MB", False))
        return
    rows.append(Row("5", f"deployment.zip ({how})", f"{size:.2f} MB", "", "", f"≤ {TARGET_MB:g} MB", size <= TARGET_MB))
