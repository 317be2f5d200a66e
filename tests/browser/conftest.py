"""Browser tests need Debian's Chromium; without it they are left out and the run says so in one line.

Never a silent pass: the tests are deselected (not skipped one by one) and the
terminal summary names what is missing.  `.ci/run` installs Chromium first,
so CI always runs them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
HERE = Path(__file__).resolve().parent
_NOT_RUN = pytest.StashKey[tuple[int, str]]()


def why_not_runnable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = why_not_runnable()
    if reason is None:
        return
    left_out = [item for item in items if HERE in item.path.parents]
    if left_out:
        items[:] = [item for item in items if HERE not in item.path.parents]
        config.hook.pytest_deselected(items=left_out)
        config.stash[_NOT_RUN] = (len(left_out), reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if _NOT_RUN in config.stash:
        count, reason = config.stash[_NOT_RUN]
        terminalreporter.write_line(f"BROWSER TESTS DID NOT RUN ({count} tests): {reason}", yellow=True, bold=True)
