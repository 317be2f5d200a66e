"""Relaxed Extended JSON output equals bson.json_util's after parsing."""

from __future__ import annotations

import datetime
import json
import re
import uuid

import pytest
from bson import (
    Binary,
    Code,
    DatetimeMS,
    DBRef,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    Timestamp,
    json_util,
)
from bson.son import SON

from chalicelib.docdb import encoding
from chalicelib.paging import lambda_size

RELAXED = json_util.RELAXED_JSON_OPTIONS

VALUES = {
    "oid": ObjectId(),
    "date": datetime.datetime(2024, 2, 29, 23, 59, 59, 999000),
    "date_whole_second": datetime.datetime(2024, 1, 1),
    "date_aware": datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    "date_before_epoch": datetime.datetime(1960, 1, 1),
    "decimal": Decimal128("-1.50E+3"),
    "binary": Binary(b"\x00\xff", 0),
    "binary_uuid": Binary(uuid.uuid4().bytes, 4),
    "bytes": b"abc",
    "int64": Int64(2**62),
    "int": -7,
    "float": 2.5,
    "regex": Regex("^a.*", "i"),
    "compiled": re.compile("b+"),
    "timestamp": Timestamp(1700000000, 3),
    "minkey": MinKey(),
    "maxkey": MaxKey(),
    "code": Code("function() {}"),
    "dbref": DBRef("coll", ObjectId()),
    "son": SON([("b", 1), ("a", 2)]),
    "nested": {"list": [1, {"d": datetime.datetime(2000, 1, 1, 0, 0, 0, 1000)}], "none": None, "bool": True},
    "unicode": "héllo ✓ \u0000",
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_each_type_matches_json_util(name):
    doc = {"v": VALUES[name]}
    ours = json_util.loads(encoding.dumps(doc), json_options=RELAXED)
    theirs = json_util.loads(json_util.dumps(doc, json_options=RELAXED), json_options=RELAXED)
    assert ours == theirs


def test_dates_carry_milliseconds():
    out = json.loads(encoding.dumps({"d": datetime.datetime(2024, 1, 1)}))
    assert out == {"d": {"$date": "2024-01-01T00:00:00.000Z"}}


def test_object_id_is_oid():
    oid = ObjectId()
    assert json.loads(encoding.dumps(oid)) == {"$oid": str(oid)}


def test_loads_reads_relaxed_and_canonical():
    assert encoding.loads('{"a": {"$numberLong": "5"}, "b": {"$oid": "5f1d7f3e9c1e4b6a7c8d9e0f"}}') == {
        "a": 5,
        "b": ObjectId("5f1d7f3e9c1e4b6a7c8d9e0f"),
    }


def test_page_is_a_json_array_of_all_documents():
    docs = [{"_id": ObjectId(), "n": i} for i in range(5)]
    page, count, cut = encoding.encode_page(iter(docs), 10_000)
    assert (count, cut) == (5, False)
    assert json_util.loads(page) == docs


def test_page_is_cut_before_the_limit():
    docs = [{"n": i, "pad": "x" * 100} for i in range(50)]
    page, count, cut = encoding.encode_page(iter(docs), 1000)
    assert cut and 0 < count < 50
    assert len(page) <= 1000
    assert [d["n"] for d in json.loads(page)] == list(range(count))


def test_empty_page():
    assert encoding.encode_page(iter([]), 100) == (b"[]", 0, False)


def test_raw_documents_encode_like_decoded_ones():
    from bson import encode
    from bson.raw_bson import RawBSONDocument

    docs = [{"_id": ObjectId(), "when": datetime.datetime(2024, 5, 6, 7, 8, 9, 10000), "nested": {"n": i}}
            for i in range(3)]
    raw = [RawBSONDocument(encode(d)) for d in docs]
    assert encoding.encode_page(iter(raw), 10_000) == encoding.encode_page(iter(docs), 10_000)
    assert encoding.dumps(raw[0]) == encoding.dumps(docs[0])


def test_page_fits_exactly_at_the_limit():
    docs = [{"n": i, "s": 'quote " and é'} for i in range(3)]
    full, _, _ = encoding.encode_page(iter(docs), 10_000)
    budget = lambda_size(bytes(full))  # what the page costs once Lambda escapes it
    assert budget > len(full)
    assert encoding.encode_page(iter(docs), budget) == (full, 3, False)
    assert encoding.encode_page(iter(docs), budget - 1)[1:] == (2, True)


def test_lambda_size_bounds_what_the_runtime_writes():
    for text in ["plain", 'a "quoted" \\ path', "é", "日本語", "\U0001f600", "\n\t"]:
        body = json.dumps({"v": text}, ensure_ascii=False).encode()
        # The Python 3.11 runtime writes the response, body included, with ensure_ascii.
        written = len(json.dumps(body.decode())) - 2
        assert written <= lambda_size(body)


def test_out_of_range_dates_and_bad_utf8_do_not_break_a_page():
    from bson import encode
    from bson.raw_bson import RawBSONDocument

    raw = RawBSONDocument(encode({"d": DatetimeMS(2**62)}))
    page, count, _ = encoding.encode_page(iter([raw]), 10_000)
    assert count == 1
    assert json.loads(page) == [{"d": {"$date": {"$numberLong": str(2**62)}}}]


@pytest.mark.parametrize(
    "text",
    [
        '{"o": {"$oid": "not an id"}}',
        '{"o": {"$oid": 5}}',
        '{"d": {"$date": {"$numberLong": "99999999999999999999"}}}',
        '{"d": {"$date": 99999999999999999999}}',
        '{"n": {"$numberDecimal": "twelve"}}',
        '{"a": ',
    ],
)
def test_malformed_extended_json_is_value_error(text):
    with pytest.raises(ValueError):
        encoding.loads(text)
