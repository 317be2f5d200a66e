"""Medians of interleaved runs, and the rows of the results table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pair:
    """Two ways of doing the same work, timed alternately (milliseconds)."""

    ours: float  # median
    theirs: float  # median
    diff: float  # median of the per-round differences (ours - theirs)
    reps: int
    parts: list[tuple[str, str, str, str]] = field(default_factory=list)  # a breakdown, for the table

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs


def paired(ours: Callable[[], Any], theirs: Callable[[], Any], reps: int, warmup: int = 5) -> Pair:
    """Run ``ours`` and ``theirs`` alternately, swapping which goes first each round.

    Side by side, a burst of noise from the machine lands on both; the median
    of the per-round differences is the overhead least disturbed by it.
    """
    for _ in range(warmup):
        ours()
        theirs()
    a: list[float] = []
    b: list[float] = []
    for i in range(reps):
        for fn, out in ((ours, a), (theirs, b)) if i % 2 == 0 else ((theirs, b), (ours, a)):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    return Pair(statistics.median(a), statistics.median(b), statistics.median(diffs), reps)


def median_ms(fn: Callable[[], Any], reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@dataclass
class Row:
    section: str
    figure: str
    measured: str
    baseline: str
    result: str
    target: str
    met: bool | None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "MISSED")


def table(rows: list[Row]) -> str:
    """A Markdown table: readable in a terminal and in bench/RESULTS.md."""
    header = ["#", "figure", "ours", "baseline", "result", "target", "met"]
    lines = [header] + [[r.section, r.figure, r.measured, r.baseline, r.result, r.target, r.verdict] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)
