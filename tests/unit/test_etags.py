"""If-Match / If-None-Match as RFC 9110 defines them (chalicelib/etags.py)."""

from __future__ import annotations

import pytest

from chalicelib import etags
from chalicelib.errors import BadRequestError
from chalicelib.etags import ANY, Preconditions, Tag


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("*", ANY),
        (' \t* ', ANY),
        ('"a"', (Tag("a"),)),
        ('W/"a"', (Tag("a", weak=True),)),
        ('"a", W/"b" ,"c"', (Tag("a"), Tag("b", weak=True), Tag("c"))),
        ('"a",,"b",', (Tag("a"), Tag("b"))),  # empty list elements are ignored
        ('""', (Tag(""),)),
        ("", ()),
        ('"\x80\xff!#~"', (Tag("\x80\xff!#~"),)),
    ],
)
def test_parse_follows_the_grammar(header, parsed):
    assert etags.parse(header, "If-Match") == parsed


@pytest.mark.parametrize(
    "header", ['a', '"a', 'a"', '"a" "b"', '"a"b', 'W/a', 'w/"a"', '"a", *', '*, "a"', "**", '"a\\"b"', '"sp ace"',
               '"tab\t"', '"quo"te"', '"\x7f"'],
)
def test_a_header_outside_the_grammar_is_400(header):
    with pytest.raises(BadRequestError):
        etags.parse(header, "If-Match")


def test_too_many_tags_is_400():
    with pytest.raises(BadRequestError):
        etags.parse(", ".join(f'"{i}"' for i in range(etags.MAX_TAGS + 1)), "If-Match")


def test_if_match_compares_strongly_and_star_needs_a_current_version():
    assert Preconditions(if_match=(Tag("x"),)).allows_write("x")
    assert not Preconditions(if_match=(Tag("x", weak=True),)).allows_write("x")
    assert not Preconditions(if_match=(Tag("x"),)).allows_write(None)
    assert Preconditions(if_match=ANY).allows_write("anything")
    assert not Preconditions(if_match=ANY).allows_write(None)
    assert not Preconditions(if_match=()).allows_write("x")


def test_if_none_match_compares_weakly():
    assert not Preconditions(if_none_match=(Tag("x", weak=True),)).allows_write("x")
    assert Preconditions(if_none_match=(Tag("y"),)).allows_write("x")
    assert Preconditions(if_none_match=ANY).allows_write(None)
    assert not Preconditions(if_none_match=ANY).allows_write("x")


def test_reads_answer_304_or_412():
    with pytest.raises(etags.NotModified) as hit:
        Preconditions(if_none_match=(Tag("x", weak=True),)).check_read("x")
    assert hit.value.etag == '"x"'
    with pytest.raises(etags.PreconditionFailedError):
        Preconditions(if_match=(Tag("y"),), if_none_match=(Tag("x"),)).check_read("x")
    Preconditions(if_match=(Tag("x"),), if_none_match=(Tag("y"),)).check_read("x")
