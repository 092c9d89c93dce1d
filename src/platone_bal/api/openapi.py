"""The OpenAPI document, completed where FastAPI cannot know: every error is an RFC 9457
problem document, secured operations say they answer 401/403, operations with a body
400 (nesting) and 413 (size), every operation may answer 429, and any other status is a
problem too (`default`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from platone_bal.api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Forbidden"},
        "status": {"type": "integer", "example": 403},
        "detail": {"type": "string", "example": "the token lacks the scope admin"},
        "errors": {
            "type": "array",
            "description": "what was wrong with the request (422 only)",
            "items": {"type": "object"},
        },
    },
    "required": ["type", "title", "status"],
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_EXPLAINED = {
    401: "No bearer token, or one that is malformed, forged, expired or revoked",
    403: "The token lacks the scope, or the role may not do this",
    422: "The request is not valid (problem document listing the errors)",
    429: "Too many requests from this client; see Retry-After",
    413: "The body is larger than BAL_MAX_BODY_BYTES (ingest: BAL_MAX_PAYLOAD_BYTES)",
    400: "The body's JSON nests deeper than 64 levels",
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                if code.isdigit() and int(code) >= 400 and "content" not in response:
                    responses[code] = _problem(response.get("description", "Error"))
                elif code == "422":
                    responses[code] = _problem(_EXPLAINED[422])
            if operation.get("security"):
                for code in (401, 403):
                    responses.setdefault(str(code), _problem(_EXPLAINED[code]))
            if "requestBody" in operation:  # refused before they are read (api/body_guard.py)
                for code in (400, 413):
                    responses.setdefault(str(code), _problem(_EXPLAINED[code]))
            responses.setdefault("429", _problem(_EXPLAINED[429]))
            responses.setdefault("default", _problem("Any other error"))
    return spec


def install_openapi(api: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = complete(
                get_openapi(
                    title=api.title,
                    version=api.version,
                    description=api.description,
                    routes=api.routes,
                )
            )
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
