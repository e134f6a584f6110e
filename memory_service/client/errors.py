"""What a failed request raises: one exception per kind of answer, all `MemoryServiceError`."""

from __future__ import annotations

from typing import Any

import httpx


class MemoryServiceError(Exception):
    """A request failed. `message` is the server's `detail` when it sent one."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(f"{status_code}: {message}" if status_code else message)
        self.message = message
        self.status_code = status_code
        self.body = body


class ConnectionFailed(MemoryServiceError):
    """The server could not be reached (after the retries)."""


class InvalidRequest(MemoryServiceError):
    """400 or 422: the message names the offending field."""


class AuthenticationFailed(MemoryServiceError):
    """401 or 403: missing or wrong API key."""


class NotFound(MemoryServiceError):
    """404."""


class PayloadTooLarge(MemoryServiceError):
    """413: over the service's size limits."""


class RateLimited(MemoryServiceError):
    """429, after the retries."""


class ServiceUnavailable(MemoryServiceError):
    """503, after the retries."""


class ServerError(MemoryServiceError):
    """Any other 5xx."""


_ERRORS: dict[int, type[MemoryServiceError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: AuthenticationFailed,
    404: NotFound,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> MemoryServiceError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's default validation shape
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail if isinstance(d, dict))
    message = str(detail) if detail else (body if isinstance(body, str) and body else response.reason_phrase)
    status = response.status_code
    kind = _ERRORS.get(status, ServerError if status >= 500 else MemoryServiceError)
    return kind(message, status, body)
