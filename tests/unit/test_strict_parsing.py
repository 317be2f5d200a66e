"""Requests mean what they say: strict Extended JSON, and the allowlist's blind spots closed (issue 11, point 5).

Pure parsing and checking, no server: the route-level effects are in
tests/routes/test_attack_findings.py.
"""

from __future__ import annotations

import json
import time

import pytest
from bson import DBRef, ObjectId, Regex

from chalicelib.docdb import allowlist, encoding, query
from chalicelib.errors import BadRequestError


def _filter(text: str) -> dict:
    return query.as_filter(query.parse_json_param(text, "filter"))


# --- type wrappers only in their exact shape ---------------------------------


def test_regex_beside_other_operators_stays_an_operator_document():
    flt = _filter('{"name": {"$regex": "^n", "$ne": "n0"}}')
    assert flt == {"name": {"$regex": "^n", "$ne": "n0"}}  # nothing dropped


def test_where_beside_regex_is_refused():
    with pytest.raises(BadRequestError, match=r"\$where"):
        _filter('{"name": {"$regex": "^n", "$where": "sleep(1000)"}}')


def test_exact_wrappers_still_become_bson_values():
    value = encoding.loads('{"o": {"$oid": "5f0000000000000000000000"}, "r": {"$ref": "c", "$id": 1},'
                           ' "x": {"$regularExpression": {"pattern": "^a", "options": "i"}}}')
    assert value["o"] == ObjectId("5f0000000000000000000000")
    assert value["r"] == DBRef("c", 1)
    assert isinstance(value["x"], Regex)


@pytest.mark.parametrize("payload", ['{"$code": "x"}', '{"$where": "x"}', '{"$function": {}}'])
def test_javascript_inside_a_dbref_is_refused(payload):
    with pytest.raises(BadRequestError):
        query.check_document(encoding.loads(f'{{"r": {{"$ref": "c", "$id": {payload}}}}}'))


@pytest.mark.parametrize("sibling", ['"$code": "x"', '"$where": "x"', '"x": 1'])
def test_a_dbref_with_other_keys_is_not_a_dbref_and_is_refused_in_a_document(sibling):
    with pytest.raises(BadRequestError):
        query.check_document(encoding.loads(f'{{"r": {{"$ref": "c", "$id": 1, {sibling}}}}}'))


def test_a_deep_dbref_is_refused_in_a_document_and_in_a_filter():
    deep = '{"a": ' * 150 + "1" + "}" * 150
    text = f'{{"r": {{"$ref": "c", "$id": {deep}}}}}'
    with pytest.raises(BadRequestError, match="deeper"):
        query.check_document(encoding.loads(text))
    with pytest.raises(BadRequestError, match="deeper"):
        _filter(text)


@pytest.mark.parametrize("id_json", ['{"$regularExpression": {"pattern": "^keep", "options": ""}}', "[1, 2]",
                                     '{"$ref": "c", "$id": 1}', '{"$regex": "^keep"}'])
def test_an_id_that_is_a_pattern_an_array_or_a_reference_is_refused(id_json):
    with pytest.raises(BadRequestError):
        query.parse_documents(encoding.loads(f'[{{"_id": {id_json}}}, {{"_id": "keep0"}}]'))


# --- regular expressions the engine could read differently --------------------


@pytest.mark.parametrize(
    "flt",
    [
        {"n": {"$regex": "^(a+) +$", "$options": "x"}},
        {"n": {"$regex": "(?x)^(a+) +$"}},
        {"n": {"$regex": "(?ix:^(a+) +$)"}},
        {"n": {"$regex": "(?#[)(a+)+(?#])"}},
        {"n": {"$regex": "^a", "$options": "q"}},
    ],
)
def test_extended_mode_inline_options_comments_and_unknown_flags_are_refused(flt):
    with pytest.raises(BadRequestError):
        _filter(json.dumps(flt))


@pytest.mark.parametrize("options", ["x", "q"])
def test_a_regular_expression_value_with_flags_other_than_ims_is_refused(options):
    text = json.dumps({"n": {"$regularExpression": {"pattern": "^a", "options": options}}})
    with pytest.raises((BadRequestError, ValueError)):
        _filter(text)


@pytest.mark.parametrize("pattern", ["^a", r"\(?x", "(?i)^a", "(?:ab)+c", "(?P<n>a)b"])
def test_ordinary_patterns_still_pass(pattern):
    _filter(json.dumps({"n": {"$regex": pattern, "$options": "im"}}))


@pytest.mark.parametrize("text", ['{"n": {"$regex": "\\ud800"}}',
                                  '{"n": {"$regularExpression": {"pattern": "\\ud800", "options": ""}}}'])
def test_a_lone_surrogate_in_a_pattern_is_a_400(text):
    with pytest.raises(BadRequestError, match="Unicode"):
        _filter(text)


# --- numbers ------------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", '{"$numberDouble": "NaN"}',
                                    '{"$numberDouble": "-Infinity"}'])
def test_nan_and_infinities_are_refused(number):
    with pytest.raises((BadRequestError, ValueError)):
        query.check_document(encoding.loads(f'{{"v": {number}}}'))


# --- poison documents -----------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {".".join(["p"] * 300): 1}},
        {"$set": {"a.$function": 1}},
        {"$rename": {"name": "$where"}},
        {"$rename": {"name": ".".join(["p"] * 300)}},
        {"$rename": {"name": "a.$[].b"}},
        [{"$set": {".".join(["p"] * 300): 1}}],
        [{"$addFields": {"a.$where": 1}}],
    ],
)
def test_updates_that_would_store_a_poison_document_are_refused(update):
    with pytest.raises(BadRequestError):
        query.as_update(update)


def test_a_dotted_path_counts_against_the_depth_limit():
    value = json.loads('{"a": ' * 60 + "1" + "}" * 60)
    with pytest.raises(BadRequestError, match="deeper"):
        query.as_update({"$set": {".".join(["p"] * 60): value}})


@pytest.mark.parametrize("update", [{"$set": {"arr.$": 5}}, {"$set": {"arr.$[].x": 5}}, {"$rename": {"a": "b.c"}}])
def test_positional_paths_and_ordinary_renames_still_pass(update):
    query.as_update(update)


# --- $expr amplification --------------------------------------------------------


def test_an_expression_that_builds_from_too_many_field_references_is_refused():
    flt = {"$expr": {"$eq": [{"$concat": ["$big"] * 1500}, "x"]}}
    with pytest.raises(BadRequestError, match="field references"):
        query.as_filter(flt)
    with pytest.raises(BadRequestError, match="field references"):
        query.as_update([{"$set": {"copy": ["$big"] * 100}}])
    with pytest.raises(BadRequestError, match="field references"):
        query.as_update([{"$set": {"copy": {"$concat": [{"$concat": ["$big"] * 10}, {"$concat": ["$big"] * 10}]}}}])


def test_ordinary_expressions_still_pass():
    query.as_filter({"$expr": {"$eq": [{"$concat": ["$first", " ", "$last"]}, "Ada Lovelace"]}})
    query.as_filter({"$expr": {"$and": [{"$gt": [f"$f{i}", 1]} for i in range(40)]}})  # comparisons build nothing
    query.as_update([{"$set": {"full": {"$concat": ["$first", " ", "$last"]}, "n": {"$add": ["$n", 1]}}}])


# --- a linear walk ---------------------------------------------------------------


def test_a_long_key_over_a_long_array_is_checked_in_linear_time():
    body = json.dumps({"k" * 2_500_000: [0] * 1_200_000}, separators=(",", ":")).encode()
    assert len(body) < 5 * 1024 * 1024
    started = time.monotonic()
    query.parse_documents(encoding.loads(body))
    elapsed = time.monotonic() - started
    # Quadratic, this took about a minute; linear, about a second.  The bound is generous for a busy machine.
    assert elapsed < 20, f"took {elapsed:.1f} s"


def test_error_messages_cut_long_keys():
    with pytest.raises(BadRequestError) as raised:
        query.check_document({"k" * 100_000: [{"$where": 1}]})
    assert len(str(raised.value)) < 500


def test_allowlist_paths_render_as_before():
    with pytest.raises(allowlist.OperatorNotAllowedError) as raised:
        query.as_filter({"$or": [{"a": 1}, {"b": {"$where": "x"}}]})
    assert "filter.$or[1].b uses $where" in str(raised.value)


def test_aggregation_expressions_have_the_same_build_budget():
    with pytest.raises(BadRequestError, match="field references"):
        allowlist.check_expression({"$concat": ["$big"] * 100}, "pipeline[0].$project.x")
    with pytest.raises(BadRequestError, match="field references"):
        allowlist.check_accumulator({"$push": {"$concat": ["$big"] * 100}}, "pipeline[0].$group.x")
    allowlist.check_expression({"$concat": ["$a", "-", "$b"]}, "pipeline[0].$project.x")
