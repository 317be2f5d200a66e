"""The OpenAPI 3.0 description of the Data API routes, for the app's document.

``openapi_paths()`` returns the two path items; every schema is inline, so
they merge into any document without touching its components.
"""

from __future__ import annotations

from typing import Any

from chalicelib import openapi
from chalicelib.dataapi import actions, formats
from chalicelib.docdb import query
from chalicelib.idempotency import KEY_PARAMETER, REPLAYED_HEADER

_BOTH = (formats.JSON, formats.EJSON)
_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_NUMBER_OR_EJSON: dict[str, Any] = {
    "oneOf": [{"type": "integer"}, {"type": "object"}],
    "description": "a number in JSON, {\"$numberInt\": …} in canonical EJSON",
}
_ID: dict[str, Any] = {
    "description": "an _id: ObjectId as a hex string in JSON, {\"$oid\": …} in EJSON; other types as mapped",
}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {media: {"schema": schema} for media in _BOTH}


REQUEST_BODY: dict[str, Any] = {
    "type": "object",
    "required": list(actions.NAMESPACE_FIELDS),
    "properties": {
        "dataSource": {"type": "string", "minLength": 1, "description": "accepted and ignored: one cluster per stage"},
        "database": {"type": "string", "minLength": 1, "maxLength": query.MAX_DB_NAME_BYTES},
        "collection": {"type": "string", "minLength": 1, "maxLength": query.MAX_COLLECTION_NAME_BYTES},
        "filter": {**_OBJECT, "description": "a query filter (Extended JSON); required by the write actions"},
        "projection": {**_OBJECT, "description": "findOne, find: fields to return"},
        "sort": {**_OBJECT, "description": "find: {\"field\": 1 | -1}"},
        "limit": {"type": "integer", "minimum": 1, "maximum": actions.MAX_FIND_LIMIT,
                  "default": actions.DEFAULT_FIND_LIMIT, "description": "find"},
        "skip": {"type": "integer", "minimum": 0, "maximum": query.MAX_SKIP, "default": 0, "description": "find"},
        "document": {**_OBJECT, "description": "insertOne"},
        "documents": {"type": "array", "items": _OBJECT, "minItems": 1,
                      "maxItems": query.MAX_DOCUMENTS_PER_INSERT, "description": "insertMany: all or none"},
        "update": {"oneOf": [_OBJECT, {"type": "array", "items": _OBJECT}],
                   "description": "updateOne, updateMany: $ operators, or an update pipeline"},
        "replacement": {**_OBJECT, "description": "replaceOne"},
        "upsert": {"type": "boolean", "default": False, "description": "updateOne, updateMany, replaceOne"},
        "pipeline": {"type": "array", "items": _OBJECT, "description": "aggregate"},
    },
    "additionalProperties": False,
}

RESULT: dict[str, Any] = {
    "description": "by action: findOne {document}, find and aggregate {documents}, insertOne {insertedId}, "
    "insertMany {insertedIds}, updates and replaceOne {matchedCount, modifiedCount, upsertedId?}, deletes "
    "{deletedCount}",
    "oneOf": [
        {"type": "object", "required": ["document"], "additionalProperties": False,
         "properties": {"document": {**_OBJECT, "nullable": True}}},
        {"type": "object", "required": ["documents"], "additionalProperties": False,
         "properties": {"documents": {"type": "array", "items": _OBJECT}}},
        {"type": "object", "required": ["insertedId"], "additionalProperties": False,
         "properties": {"insertedId": _ID}},
        {"type": "object", "required": ["insertedIds"], "additionalProperties": False,
         "properties": {"insertedIds": {"type": "array", "items": _ID}}},
        {"type": "object", "required": ["matchedCount", "modifiedCount"], "additionalProperties": False,
         "properties": {"matchedCount": _NUMBER_OR_EJSON, "modifiedCount": _NUMBER_OR_EJSON, "upsertedId": _ID}},
        {"type": "object", "required": ["deletedCount"], "additionalProperties": False,
         "properties": {"deletedCount": _NUMBER_OR_EJSON}},
    ],
}  # fmt: skip

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "error_code"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong"},
        "error_code": {"type": "string", "description": "InvalidParameter, MissingParameter, InvalidSession, …"},
        "link": {"type": "string", "description": "never sent here (Atlas linked its log entry)"},
    },
}

_ERRORS = {
    "400": "malformed body or fields, a missing Content-Type, or no credentials "
    "(error_code InvalidParameter or MissingParameter)",
    "401": "credentials that match no user (error_code InvalidSession)",
    "403": "outside the caller's grants, or a reserved database or collection",
    "404": "no such action",
    "409": "a document with that _id exists already; nothing was written (error_code DuplicateKey); or a "
    "request with this Idempotency-Key is still in progress (error_code IdempotencyKeyInUse, Retry-After)",
    "413": "the body is over the size limit",
    "415": "a Content-Type other than application/json or application/ejson",
    "422": "this Idempotency-Key was first used for a different request (error_code IdempotencyKeyMismatch)",
    "503": "a backend is unreachable, throttling or misconfigured, or (error_code WriteOutcomeUnknown) a write's "
    "answer was lost: retry with the same Idempotency-Key; retry after Retry-After",
}


def _operation(summary: str, operation_id: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "the action's result, as Accept asked (or the stage's default)",
                "headers": {REPLAYED_HEADER: {"description": "`true` when this is the kept answer of an earlier "
                                              "write with the same Idempotency-Key", "schema": {"type": "string"}}},
                "content": _content(RESULT)},
    }  # fmt: skip
    for status, description in _ERRORS.items():
        responses[status] = {"description": description, "content": {formats.JSON: {"schema": ERROR}}}
    retry_after = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}
    responses["503"]["headers"] = retry_after
    responses["409"]["headers"] = retry_after  # an Idempotency-Key still in progress
    return {
        "summary": summary,
        "operationId": operation_id,
        "description": (
            "The retired Atlas Data API's actions: findOne, find, insertOne, insertMany, updateOne, updateMany, "
            "replaceOne, deleteOne, deleteMany, aggregate. Bodies are JSON or Extended JSON (canonical or "
            "relaxed); responses are plain JSON or canonical EJSON as Accept asks. Authenticate with an apiKey "
            "(or api-key) header holding a key from `tools.users create-key`, or HTTP Basic. find and "
            "aggregate answer a 400 rather than more than the response budget."
        ),
        "parameters": [KEY_PARAMETER],
        "requestBody": {"required": True, "content": _content(REQUEST_BODY)},
        "responses": responses,
        "security": [{"dataApiKey": []}, {"dataApiKeyAlt": []}, {"basicAuth": []}],
    }


_ACTION = {
    "name": "action",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(actions.ACTIONS)},
    "description": "the action to run",
}
_APP_ID = {
    "name": "app_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "an Atlas App ID, accepted and ignored",
}


def openapi_paths() -> dict[str, Any]:
    """The path items of ``/action/{action}`` and its Atlas-shaped twin."""
    return {
        "/action/{action}": {"parameters": [_ACTION], "post": _operation("Run a Data API action", "data_api_action")},
        "/app/{app_id}/endpoint/data/v1/action/{action}": {
            "parameters": [_APP_ID, _ACTION],
            "post": _operation("Run a Data API action (Atlas URL shape)", "data_api_app_action"),
        },
    }


def openapi_security_schemes() -> dict[str, Any]:
    """The key headers, for the document's ``components.securitySchemes``."""
    return {
        "dataApiKey": {"type": "apiKey", "in": "header", "name": "apiKey", "description": "an API key"},
        "dataApiKeyAlt": {"type": "apiKey", "in": "header", "name": "api-key", "description": "the same key"},
    }


def openapi_section() -> openapi.Section:
    """The Data API's two routes and its key header."""
    return openapi.Section(paths=openapi_paths(), security_schemes=openapi_security_schemes())
