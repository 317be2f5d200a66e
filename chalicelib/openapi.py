"""The OpenAPI 3 document served at ``GET /openapi.json``, assembled from its parts.

Each resource describes its own routes beside the code that validates them:
a module listed in :data:`SECTIONS` has a function ``openapi_section()``
returning a :class:`Section` (its paths and the schemas they name), and its
body schemas sit next to its parsers, with limits taken from the same
constants the checks use.  Adding a route means adding its description to
its resource's section; a new resource adds its module here once.
tests/routes/test_openapi.py fails when a route and the document disagree.

This module holds only the building blocks every section shares (errors,
parameters, bodies, references) and imports nothing of the app, so a section
can import it at module level.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"

# Modules with an ``openapi_section()``, in the order their paths are listed.
SECTIONS = (
    "chalicelib.openapi",
    "chalicelib.docs",
    "chalicelib.tables.links",
    "chalicelib.tables.movies",
    "chalicelib.docdb.views",
    "chalicelib.docdb.documents",
    "chalicelib.dataapi.openapi",
)

JSON = "application/json"


@dataclass
class Section:
    """One resource's part of the document."""

    paths: dict[str, Any]
    schemas: dict[str, Any] = field(default_factory=dict)
    security_schemes: dict[str, Any] = field(default_factory=dict)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def error(description: str, schema: str = "Error", headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": json_content(ref(schema))}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}
LINK_HEADER = {
    "Link": {
        "description": 'the next page, as `<path?query&next=TOKEN>; rel="next"`, when more may follow',
        "schema": {"type": "string"},
    }
}
ERRORS = {
    "400": error("malformed or refused input; the message says what to change"),
    "401": error("missing or wrong Basic credentials (answered by the gateway)", "GatewayError"),
    "403": error("outside the caller's grants, or a reserved database or collection"),
    "404": error("no such item"),
    "409": error("a document with that _id exists already; nothing was written"),
    "413": error("the body is over the size limit"),
    "415": error("the body is not application/json"),
    "503": {
        "description": (
            "Code ConfigurationError: the stage's configuration or a secret is unusable and an operator must act; "
            "Code ServiceUnavailableError: a backend is unreachable, busy, throttling or did not answer in time. "
            "Retry after Retry-After"
        ),
        "headers": RETRY_AFTER,
        "content": json_content({"anyOf": [ref("Error"), ref("GatewayError")]}),
    },
}


def errors(*codes: str) -> dict[str, Any]:
    return {code: ERRORS[code] for code in codes}


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def json_query_param(name: str, schema: dict[str, Any], description: str, example: str) -> dict[str, Any]:
    """A query parameter holding (relaxed Extended) JSON text.

    A string with an example, not ``content: application/json``: client
    generators (openapi-python-client among them) drop content-style query
    parameters.  The JSON's own schema stays under ``x-json-schema``.
    """
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "example": example,
        "description": f"{description}; JSON text (relaxed Extended JSON)",
        "x-json-schema": schema,
    }


def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": json_content(schema)}


def page_parameters() -> list[dict[str, Any]]:
    """``limit`` and ``next``, as every paged list takes them."""
    from chalicelib import paging

    return [
        query_param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": paging.MAX_LIMIT, "default": paging.DEFAULT_LIMIT},
            "page size",
        ),
        query_param(
            "next",
            {"type": "string", "maxLength": paging.MAX_CURSOR_CHARS},
            'the opaque token from the previous page\'s `Link: rel="next"`',
        ),
    ]


def page_response(items: dict[str, Any], description: str = "a page") -> dict[str, Any]:
    """A 200 holding a JSON array of ``items``, with the ``Link`` header of the next page."""
    return {"description": description, "headers": LINK_HEADER,
            "content": json_content({"type": "array", "items": items})}  # fmt: skip


def openapi_section() -> Section:
    """The operational routes: ``/health`` and this document."""
    return Section(
        paths={
            "/health": {
                "get": {
                    "summary": "Liveness for load balancers; touches no backend",
                    "operationId": "health",
                    "responses": {"200": {"description": "the API is up", "content": json_content(ref("Health"))}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {
                        "200": {"description": "OpenAPI 3 document", "content": json_content({"type": "object"})}
                    },
                }
            },
        },
        schemas={
            "Error": {
                "type": "object",
                "properties": {"Code": {"type": "string"}, "Message": {"type": "string"}},
                "required": ["Code", "Message"],
            },
            "GatewayError": {
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"],
            },
            "Health": {
                "type": "object",
                "properties": {"status": {"type": "string", "enum": ["ok"]}},
                "required": ["status"],
            },
        },
    )


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once per container)."""
    from chalicelib.web import MAX_BODY_BYTES

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    schemes: dict[str, Any] = {"basicAuth": {"type": "http", "scheme": "basic"}}
    for module in SECTIONS:
        section: Section = importlib.import_module(module).openapi_section()
        for name, mine, everyone in (("path", section.paths, paths), ("schema", section.schemas, schemas),
                                     ("security scheme", section.security_schemes, schemes)):  # fmt: skip
            clash = set(mine) & set(everyone)
            if clash:
                raise AssertionError(f"{module} describes the {name} {sorted(clash)} again")
            everyone.update(mine)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "docdb-rest",
            "version": API_VERSION,
            "description": (
                "HTTP access to DynamoDB tables (links, favorite movies) and DocumentDB collections. "
                f"Bodies are JSON, at most {MAX_BODY_BYTES} bytes; errors are {{\"Code\", \"Message\"}}."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": schemes,
        },
    }
