"""What one request's checks may let through in all, whatever its shape.

The allowlist (chalicelib/docdb/allowlist.py) checks each filter, expression
and pipeline stage, but some costs only add up across them: a string doubled
once per nested ``$lookup`` through its ``let`` variables, or thousands of
short regular expressions that are each fine on their own.  One
:class:`Budget` per request counts both, so the totals below hold for the
whole request, however it splits its work.

The app opens a budget around every request (a middleware in app.py); a
check called outside one (a unit test, a tool) opens its own for that call.
Standard library only: app.py imports this on every request, and the
DynamoDB routes must not load ``bson``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# How many 16 MB units (a document field, $$ROOT, a let variable) the
# strings, arrays and objects of one request may be built from, in all.
MAX_REQUEST_BUILT_REFS = 64
# The characters of every regular expression in one request, in all: the
# nested-repetition scan is Python, about a microsecond per character.
MAX_REQUEST_REGEX_CHARS = 16 * 1024


class Budget:
    """What a request has used so far, and the weights of the variables in scope."""

    __slots__ = ("built", "regex_chars", "variables")

    def __init__(self) -> None:
        self.built = 0
        self.regex_chars = 0
        # let variable -> how many 16 MB units its value can hold
        self.variables: dict[str, int] = {}


_CURRENT: ContextVar[Budget | None] = ContextVar("docdb_request_budget", default=None)


@contextmanager
def request_budget() -> Iterator[Budget]:
    """The budget of the request being checked: a new one, or the one already open."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    budget = Budget()
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def current() -> Budget:
    """The open budget; a throwaway one outside a request (its counts are then per call)."""
    return _CURRENT.get() or Budget()


@contextmanager
def variables(weights: dict[str, int]) -> Iterator[None]:
    """Put ``let`` variables and their weights in scope for a sub-pipeline, shadowing outer ones."""
    budget = current()
    outer = budget.variables
    budget.variables = outer | weights
    try:
        yield
    finally:
        budget.variables = outer
