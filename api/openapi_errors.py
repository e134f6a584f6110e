"""Make the OpenAPI schema describe the errors the API really returns.

FastAPI documents 422 as its own `HTTPValidationError` (`detail` a list), while this API
answers 422 with `detail` a message and `errors` the list (`api.app._validation_error`),
and it documents no other error. Clients (and schemathesis) validate against the schema,
so it is patched once, when first generated: the real 422 body, and an `Error` body
(`detail` a message) for the statuses each operation can answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "title": "HTTPValidationError",
    "type": "object",
    "properties": {
        "detail": {"type": "string", "title": "Detail", "description": "The first problems, one `field: message` each."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {}}, "msg": {"type": "string"}, "type": {"type": "string"}},
                "required": ["loc", "msg", "type"],
            },
        },
    },
    "required": ["detail"],
}
DESCRIPTIONS = {
    400: "The body is not valid UTF-8 / JSON that can be parsed",
    401: "Missing, unknown or revoked API key",
    404: "Not found",
    413: "Batch or event over the size limits",
    429: "Rate limit exceeded (see Retry-After)",
    503: "A backing service (database, job queue) is unavailable; retry after Retry-After",
    504: "Stored, but not processed within the wait",
}


def error_statuses(path: str, method: str, has_body: bool) -> list[int]:
    statuses = [503]
    if has_body:
        statuses.append(400)
    if path.startswith("/v1/"):
        statuses += [401, 429]
    if "{" in path or method == "delete":
        statuses.append(404)
    if (path, method) == ("/v1/events", "post"):
        statuses += [413, 504]
    return statuses


def document_errors(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["HTTPValidationError"] = VALIDATION_ERROR
    components["Error"] = ERROR
    components.pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in error_statuses(path, method, "requestBody" in operation):
                responses.setdefault(
                    str(status),
                    {
                        "description": DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )


def install_error_docs(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
