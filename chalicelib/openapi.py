"""The OpenAPI 3 document of every route, served at ``GET /openapi.json``.

Built in code so limits come from the constants the checks use.  A test
compares its paths and methods with the app's route table, so a route added
without a line here fails the suite.
"""

from __future__ import annotations

from functools import cache
from typing import Any

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {_JSON: {"schema": schema}}


def _error(description: str, schema: str = "Error", headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json(_ref(schema))}
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}
_LINK_HEADER = {
    "Link": {
        "description": 'the next page, as `<path?query&next=TOKEN>; rel="next"`, when more may follow',
        "schema": {"type": "string"},
    }
}
ERRORS = {
    "400": _error("malformed or refused input; the message says what to change"),
    "401": _error("missing or wrong Basic credentials (answered by the gateway)", "GatewayError"),
    "403": _error("outside the caller's grants, or a reserved database or collection"),
    "404": _error("no such item"),
    "409": _error("a document with that _id exists already; nothing was written"),
    "413": _error("the body is over the size limit"),
    "415": _error("the body is not application/json"),
    "503": {
        "description": "a backend is unreachable, throttling or misconfigured; retry after Retry-After",
        "headers": _RETRY_AFTER,
        "content": _json({"anyOf": [_ref("Error"), _ref("GatewayError")]}),
    },
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: ERRORS[code] for code in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_JSON_QUERY_EXAMPLES = {
    "filter": '{"name": "brian"}',
    "projection": '{"_id": 0, "name": 1}',
    "sort": '[["rating", -1]]',
}


def _json_query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
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
        "example": _JSON_QUERY_EXAMPLES.get(name),
        "description": f"{description}; JSON text (relaxed Extended JSON)",
        "x-json-schema": schema,
    }


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": _json(schema)}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once per container)."""
    from chalicelib import paging, web
    from chalicelib.docdb import query
    from chalicelib.dynamo import MAX_KEY_BYTES
    from chalicelib.links import MAX_URL_CHARS
    from chalicelib.movies import MAX_MOVIE_CHARS

    limit = _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": paging.MAX_LIMIT, "default": paging.DEFAULT_LIMIT},
        "page size",
    )
    next_token = _query(
        "next",
        {"type": "string", "maxLength": paging.MAX_CURSOR_CHARS},
        'the opaque token from the previous page\'s `Link: rel="next"`',
    )
    all_flag = _query("all", {"type": "boolean", "default": False}, "allow an empty filter (every document)")
    filter_param = _json_query("filter", _ref("Filter"), "which documents, as a query object")
    db_name = _path(
        "db",
        {"type": "string", "minLength": 1, "maxLength": query.MAX_DB_NAME_BYTES, "pattern": r'^[^/\\. "$*<>:|?]+$'},
        f"database name: 1 to {query.MAX_DB_NAME_BYTES} bytes, none of / \\ . space \" $ * < > : | ?",
    )
    collection_name = _path(
        "collection",
        {"type": "string", "minLength": 1, "maxLength": query.MAX_COLLECTION_NAME_BYTES, "pattern": r"^[^$./][^$/]*$"},
        f"collection name: 1 to {query.MAX_COLLECTION_NAME_BYTES} bytes, no $ or NUL, not starting with .",
    )
    link_id = _path("link_id", {"type": "string", "minLength": 1, "maxLength": 36}, "a link id (uuid4)")
    movie_name = _path("name", {"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES}, "whose favorite")

    find = {
        "summary": "Find documents",
        "description": (
            "A page of matching documents in a stable order (your sort, then _id). Operators are limited to "
            "an allowlist; $where, $function, $accumulator and server-side JavaScript are never accepted."
        ),
        "parameters": [
            filter_param,
            _json_query("projection", _ref("Projection"), "which fields to return"),
            _json_query("sort", _ref("Sort"), 'order: {"a": 1, "b": -1} or [["a", 1], ["b", -1]]'),
            limit,
            _query("skip", {"type": "integer", "minimum": 0, "maximum": query.MAX_SKIP}, "documents to skip"),
            _query("count", {"type": "boolean", "default": False}, "add X-Total-Count"),
            next_token,
        ],
        "responses": {
            "200": {
                "description": "the page of documents",
                "headers": {
                    **_LINK_HEADER,
                    "X-Total-Count": {
                        "description": "how many documents match (with count=true)",
                        "schema": {"type": "string"},
                    },
                },
                "content": _json({"type": "array", "items": _ref("Document")}),
            },
            **_errors("400", "401", "403", "503"),
        },
    }
    insert = {
        "summary": "Insert documents",
        "description": (
            f"One document, or an array of 1 to {query.MAX_DOCUMENTS_PER_INSERT} inserted all or none. "
            "Field names may not start with $ or hold NUL."
        ),
        "requestBody": _body(
            {
                "oneOf": [
                    _ref("Document"),
                    {
                        "type": "array",
                        "items": _ref("Document"),
                        "minItems": 1,
                        "maxItems": query.MAX_DOCUMENTS_PER_INSERT,
                    },
                ]
            }
        ),
        "responses": {
            "201": {
                "description": "the stored document(s), _id included",
                "content": _json({"oneOf": [_ref("Document"), {"type": "array", "items": _ref("Document")}]}),
            },
            **_errors("400", "401", "403", "409", "413", "415", "503"),
        },
    }
    update = {
        "summary": "Update matching documents",
        "parameters": [all_flag],
        "requestBody": _body(_ref("UpdateBody")),
        "responses": {
            "200": {"description": "what was matched and changed", "content": _json(_ref("UpdateResult"))},
            **_errors("400", "401", "403", "409", "413", "415", "503"),
        },
    }
    delete = {
        "summary": "Delete matching documents",
        "description": "The filter comes in the body or as ?filter=, not both.",
        "parameters": [filter_param, all_flag],
        "requestBody": _body(_ref("DeleteBody"), required=False),
        "responses": {
            "200": {"description": "how many were deleted", "content": _json(_ref("DeleteResult"))},
            **_errors("400", "401", "403", "413", "415", "503"),
        },
    }

    def collection_ops(params: list[dict[str, Any]], tag: str) -> dict[str, Any]:
        ops: dict[str, dict[str, Any]] = {
            "get": find, "post": insert, "put": insert, "patch": update, "delete": delete
        }
        return {
            "parameters": params,
            **{
                method: {**op, "tags": [tag], "security": [{"basicAuth": []}], "operationId": f"{method}_{tag}"}
                for method, op in ops.items()
            },
        }

    paging_responses = {
        "description": "a page",
        "headers": _LINK_HEADER,
    }
    paths = {
        "/health": {
            "get": {
                "summary": "Liveness for load balancers; touches no backend",
                "operationId": "health",
                "responses": {"200": {"description": "the API is up", "content": _json(_ref("Health"))}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3 document", "content": _json({"type": "object"})}},
            }
        },
        "/link": {
            "post": {
                "summary": "Store a link",
                "operationId": "create_link",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {"link": {"type": "string", "minLength": 1, "maxLength": MAX_URL_CHARS}},
                        "required": ["link"],
                        "additionalProperties": False,
                    }
                ),
                "responses": {
                    "201": {
                        "description": "stored",
                        "headers": {"Location": {"description": "/link/<id>", "schema": {"type": "string"}}},
                        "content": _json(
                            {"type": "object", "properties": {"link_id": {"type": "string"}}, "required": ["link_id"]}
                        ),
                    },
                    **_errors("400", "413", "415", "503"),
                },
            },
            "get": {
                "summary": "List links",
                "operationId": "list_links",
                "parameters": [limit, next_token],
                "responses": {
                    "200": {**paging_responses, "content": _json({"type": "array", "items": _ref("Link")})},
                    **_errors("400", "503"),
                },
            },
        },
        "/link/{link_id}": {
            "parameters": [link_id],
            "get": {
                "summary": "One link",
                "operationId": "get_link",
                "responses": {
                    "200": {"description": "the link", "content": _json(_ref("Link"))},
                    **_errors("404", "503"),
                },
            },
            "delete": {
                "summary": "Delete a link",
                "operationId": "delete_link",
                "responses": {"204": {"description": "deleted"}, **_errors("404", "503")},
            },
        },
        "/movies": {
            "get": {
                "summary": "List favorite movies",
                "operationId": "list_movies",
                "parameters": [limit, next_token],
                "responses": {
                    "200": {**paging_responses, "content": _json({"type": "array", "items": _ref("Movie")})},
                    **_errors("400", "503"),
                },
            }
        },
        "/movies/{name}": {
            "parameters": [movie_name],
            "get": {
                "summary": "Someone's favorite movie",
                "operationId": "get_movie",
                "responses": {
                    "200": {"description": "the favorite", "content": _json(_ref("Movie"))},
                    **_errors("404", "503"),
                },
            },
            "put": {
                "summary": "Create or replace someone's favorite movie",
                "operationId": "put_movie",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {
                            "favorite_movie": {"type": "string", "minLength": 1, "maxLength": MAX_MOVIE_CHARS}
                        },
                        "required": ["favorite_movie"],
                        "additionalProperties": False,
                    }
                ),
                "responses": {
                    "200": {"description": "what was stored", "content": _json(_ref("Movie"))},
                    **_errors("400", "413", "415", "503"),
                },
            },
            "delete": {
                "summary": "Forget someone's favorite movie",
                "operationId": "delete_movie",
                "responses": {"204": {"description": "deleted"}, **_errors("404", "503")},
            },
        },
        "/docdb/{db}/{collection}": collection_ops([db_name, collection_name], "docdb_any"),
        "/docdb/demodb/{collection}": collection_ops([collection_name], "docdb_demodb"),
        "/docdb/demodb/democollection": collection_ops([], "docdb_democollection"),
    }
    document_schema = {
        "type": "object",
        "description": "a document in relaxed Extended JSON ({\"$oid\": …}, {\"$date\": …})",
        "additionalProperties": True,
    }
    schemas = {
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
        "Link": {
            "type": "object",
            "properties": {"link_id": {"type": "string"}, "link": {"type": "string"}},
            "required": ["link_id", "link"],
        },
        "Movie": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "favorite_movie": {"type": "string"}},
            "required": ["name", "favorite_movie"],
        },
        "Document": document_schema,
        "Filter": {
            "type": "object",
            "description": (
                "a MongoDB query; allowed operators: "
                + ", ".join(sorted(_allowed("QUERY_OPERATORS")))
                + "; inside $expr: "
                + ", ".join(sorted(_allowed("EXPRESSION_OPERATORS")))
            ),
            "additionalProperties": True,
        },
        "Projection": {
            "type": "object",
            "description": "field: 0 or 1, or {\"$slice\": …} / {\"$elemMatch\": …}",
            "additionalProperties": True,
        },
        "Sort": {
            "oneOf": [
                {"type": "object", "additionalProperties": {"type": "integer", "enum": [1, -1]}},
                {
                    "type": "array",
                    "maxItems": query.MAX_SORT_KEYS,
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"oneOf": [{"type": "string"}, {"type": "integer", "enum": [1, -1]}]},
                    },
                },
            ]
        },
        "UpdateBody": {
            "type": "object",
            "properties": {
                "filter": _ref("Filter"),
                "update": {
                    "description": (
                        "update operators ("
                        + ", ".join(sorted(_allowed("UPDATE_OPERATORS")))
                        + ") or a pipeline of $set, $addFields and $unset stages"
                    ),
                    "oneOf": [
                        {"type": "object", "minProperties": 1},
                        {"type": "array", "minItems": 1, "items": {"type": "object"}},
                    ],
                },
                "upsert": {"type": "boolean", "default": False},
            },
            "required": ["update"],
            "additionalProperties": False,
        },
        "DeleteBody": {
            "type": "object",
            "properties": {"filter": _ref("Filter")},
            "additionalProperties": False,
        },
        "UpdateResult": {
            "type": "object",
            "properties": {
                "matched_count": {"type": "integer"},
                "modified_count": {"type": "integer"},
                "upserted_id": {"nullable": True},
            },
            "required": ["matched_count", "modified_count", "upserted_id"],
        },
        "DeleteResult": {
            "type": "object",
            "properties": {"deleted_count": {"type": "integer"}},
            "required": ["deleted_count"],
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "docdb-rest",
            "version": API_VERSION,
            "description": (
                "HTTP access to DynamoDB tables (links, favorite movies) and DocumentDB collections. "
                f"Bodies are JSON, at most {web.MAX_BODY_BYTES} bytes; errors are {{\"Code\", \"Message\"}}."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
    }


def _allowed(name: str) -> Any:
    from chalicelib.docdb import allowlist

    return getattr(allowlist, name)
