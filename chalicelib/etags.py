"""Entity tags and the conditional request headers, as RFC 9110 defines them.

Shared by every resource that serves an ``ETag`` (documents, favorite
movies).  This module only parses and compares; each store decides how a
condition becomes part of its one write (a filter, a condition expression).

- ``If-Match``: ``*`` or a list of entity tags, compared strongly: a weak tag
  (``W/"…"``) never matches.
- ``If-None-Match``: ``*`` or a list, compared weakly (``W/"x"`` matches ``"x"``).
- A header that does not follow the grammar is a 400; a well-formed tag this
  API never issued simply matches nothing (a 412 on a write, never a 500).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalice import Response

from chalicelib.errors import BadRequestError, ChaliceViewError

MAX_TAGS = 100  # a condition names at most this many tags (DynamoDB's IN takes 100)
MAX_HEADER_CHARS = 8192

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS = " \t"


class PreconditionFailedError(ChaliceViewError):
    STATUS_CODE = 412


class NotModified(Exception):
    """A GET or HEAD whose ``If-None-Match`` matched: answer 304 with this tag."""

    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


@dataclass(frozen=True)
class Tag:
    opaque: str  # between the quotes
    weak: bool = False


ANY = "*"


def parse(value: str | None, header: str) -> str | tuple[Tag, ...] | None:
    """``*``, the tuple of tags, or None when the header is absent; 400 when malformed."""
    if value is None:
        return None
    if len(value) > MAX_HEADER_CHARS:
        raise BadRequestError(f"{header} is longer than {MAX_HEADER_CHARS} characters")
    text = value.strip(_OWS)
    if text == ANY:
        return ANY
    tags: list[Tag] = []
    position, end = 0, len(text)
    while position < end:
        # Empty list elements (",,") are allowed by the list syntax and ignored.
        if text[position] in _OWS + ",":
            position += 1
            continue
        match = _TAG.match(text, position)
        if match is None:
            raise BadRequestError(
                f'{header} must be * or a comma-separated list of entity tags such as "abc" or W/"abc"'
            )
        tags.append(Tag(match.group(2), weak=match.group(1) is not None))
        position = match.end()
        rest = text[position:].lstrip(_OWS)
        if rest and not rest.startswith(","):
            raise BadRequestError(f"{header} must separate entity tags with commas")
    if len(tags) > MAX_TAGS:
        raise BadRequestError(f"{header} names more than {MAX_TAGS} entity tags")
    return tuple(tags)


def quote(opaque: str) -> str:
    """The strong ``ETag`` header value for ``opaque``."""
    return f'"{opaque}"'


@dataclass(frozen=True)
class Preconditions:
    """A request's ``If-Match`` and ``If-None-Match``, parsed."""

    if_match: str | tuple[Tag, ...] | None = None
    if_none_match: str | tuple[Tag, ...] | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> Preconditions:
        headers = headers or {}
        return cls(
            parse(headers.get("if-match"), "If-Match"),
            parse(headers.get("if-none-match"), "If-None-Match"),
        )

    @property
    def none(self) -> bool:
        return self.if_match is None and self.if_none_match is None

    def strong_match_candidates(self) -> list[str] | None:
        """The opaque values ``If-Match`` accepts (weak tags dropped), None for ``*`` or absent."""
        if self.if_match is None or self.if_match == ANY:
            return None
        return [t.opaque for t in self.if_match if isinstance(t, Tag) and not t.weak]

    def allows_write(self, current: str | None) -> bool:
        """RFC 9110 13.2.2 for a state-changing method: is the write to go ahead?

        ``current`` is the current ETag's opaque value, None when the resource
        does not exist.
        """
        return self._if_match_holds(current) and not self._none_match_hits(current)

    def check_read(self, current: str) -> None:
        """For GET/HEAD of an existing resource: 412 for a failed If-Match, 304 for a matched If-None-Match."""
        if not self._if_match_holds(current):
            raise PreconditionFailedError("If-Match does not match the current entity tag")
        if self._none_match_hits(current):
            raise NotModified(quote(current))

    def _if_match_holds(self, current: str | None) -> bool:
        if self.if_match is None:
            return True
        if current is None:
            return False
        return self.if_match == ANY or current in (self.strong_match_candidates() or [])

    def _none_match_hits(self, current: str | None) -> bool:
        if self.if_none_match is None or current is None:
            return False
        if self.if_none_match == ANY:
            return True
        return any(isinstance(t, Tag) and t.opaque == current for t in self.if_none_match)


UNCONDITIONAL = Preconditions()


def failed(what: str = "the resource") -> PreconditionFailedError:
    return PreconditionFailedError(
        f"the precondition failed: {what} does not match If-Match / If-None-Match (it changed, exists, or is absent)"
    )


def tagged_response(read_or_write: Callable[[Preconditions], tuple[Any, str]], request: Any) -> Response:
    """Run ``read_or_write`` with the request's conditions: 200 with its JSON body and ETag, or a 304."""
    try:
        body, opaque = read_or_write(Preconditions.from_headers(request.headers))
    except NotModified as hit:
        return Response(body="", status_code=304, headers={"ETag": hit.etag})
    return Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=200,
        headers={"Content-Type": "application/json", "ETag": quote(opaque)},
    )


# --- the OpenAPI pieces every resource with ETags uses ----------------------------

ETAG_HEADER = {
    "ETag": {
        "description": "the strong entity tag of the current version (opaque, quoted); send it back in If-Match",
        "schema": {"type": "string"},
    }
}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_HEADER_CHARS},
    "description": (
        "* or a comma-separated list of entity tags: act only if the current version is one of them "
        "(strong comparison: weak tags never match); 412 otherwise, and 400 when malformed"
    ),
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_HEADER_CHARS},
    "description": (
        "* or a comma-separated list of entity tags: a read answers 304 when the current version is one of "
        "them (* when it exists); a write goes ahead only if none match (PUT with * creates only); "
        "412 otherwise, and 400 when malformed"
    ),
}
NOT_MODIFIED = {"description": "If-None-Match matched: no body", "headers": ETAG_HEADER}


def precondition_failed() -> dict[str, Any]:
    from chalicelib import openapi

    return openapi.error("If-Match or If-None-Match does not hold: the resource changed, exists, or is absent")
