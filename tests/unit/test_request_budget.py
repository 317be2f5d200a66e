"""The request budget (chalicelib/docdb/budget.py) as the allowlist and the pipeline check count against it."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Regex

from chalicelib.docdb import aggregation, allowlist, budget
from chalicelib.errors import BadRequestError


def lookup(let: dict[str, Any], pipeline: list[Any]) -> dict[str, Any]:
    return {"$lookup": {"from": "c", "as": "j", "let": let, "pipeline": pipeline}}


def concat(*parts: str) -> dict[str, Any]:
    return {"$concat": list(parts)}


def test_a_variable_weighs_what_its_value_was_built_from():
    assert allowlist.check_expression("$a", "e") == 1
    assert allowlist.check_expression(concat("$a", "$b", "$$ROOT"), "e") == 3
    assert allowlist.check_expression({"$eq": ["$$NOW", 1]}, "e") == 1  # never less than one value
    with budget.request_budget(), budget.variables({"v": 8}):
        assert allowlist.check_expression(concat("$$v", "$$v.x"), "e") == 16
        assert allowlist.check_expression({"$toUpper": "$$v"}, "e") == 8


def test_a_variable_doubled_past_the_expression_limit_is_a_400():
    # v1 = 2 references, v2 = 4, v3 = 8, v4 = 16, v5 = 32 > 16
    pipeline: list[Any] = [{"$match": {}}]
    for level in range(5, 1, -1):
        pipeline = [lookup({f"v{level}": concat(f"$$v{level - 1}", f"$$v{level - 1}")}, pipeline)]
    pipeline = [lookup({"v1": concat("$s", "$s")}, pipeline)]
    with pytest.raises(BadRequestError, match=r"\.let\.v5 builds a string, array or object from 32 field references"):
        aggregation.check_pipeline(pipeline)
    aggregation.check_pipeline(pipeline[0]["$lookup"]["pipeline"])  # without v1's let: v2..v5 weigh 2..16


def test_let_variables_are_scoped_to_their_sub_pipeline():
    heavy = lookup({"v": concat(*["$s"] * 16)}, [{"$match": {}}])
    # a sibling $lookup's "$$v" is not the heavy one (an unknown variable weighs one value)
    light = lookup({"w": concat("$$v", "$$v")}, [{"$match": {}}])
    aggregation.check_pipeline([heavy, light])
    inner = lookup({"w": concat("$$v", "$$v")}, [{"$match": {}}])
    with pytest.raises(BadRequestError, match="32 field references"):
        aggregation.check_pipeline([lookup({"v": concat(*["$s"] * 16)}, [inner])])
    # an inner let shadows an outer variable of the same name
    shadow = lookup({"v": "$a"}, [{"$addFields": {"x": concat("$$v", "$$v")}}])
    aggregation.check_pipeline([lookup({"v": concat(*["$s"] * 16)}, [shadow])])


def test_checks_share_the_budget_of_the_request_they_run_in():
    flt = {"$expr": {"$eq": [concat(*["$s"] * 16), "x"]}}
    for _ in range(8):
        allowlist.check_filter(flt)  # outside a request, each call has its own budget
    with budget.request_budget() as spent:
        for _ in range(budget.MAX_REQUEST_BUILT_REFS // 16):
            allowlist.check_filter(flt)
        assert spent.built == budget.MAX_REQUEST_BUILT_REFS
        with pytest.raises(BadRequestError, match="per request"):
            allowlist.check_filter(flt)


def test_regular_expressions_count_against_the_request_in_all():
    pattern = "a" * allowlist.MAX_REGEX_CHARS
    many = {"$or": [{"n": {"$regex": pattern}}] * (budget.MAX_REQUEST_REGEX_CHARS // allowlist.MAX_REGEX_CHARS)}
    allowlist.check_filter(many)
    with budget.request_budget() as spent:
        allowlist.check_filter(many)
        assert spent.regex_chars == budget.MAX_REQUEST_REGEX_CHARS
        with pytest.raises(BadRequestError, match=f"the limit is {budget.MAX_REQUEST_REGEX_CHARS} in all"):
            allowlist.check_document({"r": Regex("b")}, "document")
