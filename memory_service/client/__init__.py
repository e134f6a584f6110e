"""Python client for the REST API: `MemoryClient` (sync) and `AsyncMemoryClient` (asyncio), over httpx.

Both are typed with the API's own models (`memory_service.schemas`, `memory_service.domain`).
Every endpoint is described once as a `Call` (method, path, body, response model; `calls.py`);
the two clients (`http.py`) only differ in how they send it. 429 and 503 answers, and
connections that never reached the server, are retried with exponential backoff (honouring
`Retry-After`, one `RetryPolicy` for both). Events are given an `event_id` before the first
try, so a retried ingest cannot store them twice. Errors are in `errors.py`.

For a service in this process (no server), see `api.inprocess.InProcessService`.
"""

from memory_service.client.calls import Call, Calls
from memory_service.client.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    InvalidRequest,
    MemoryServiceError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    error_from_response,
)
from memory_service.client.http import (
    API_KEY_ENV,
    DEFAULT_URL,
    NO_RETRY,
    URL_ENV,
    AsyncMemoryClient,
    MemoryClient,
    RetryPolicy,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_URL",
    "NO_RETRY",
    "URL_ENV",
    "AsyncMemoryClient",
    "AuthenticationFailed",
    "Call",
    "Calls",
    "ConnectionFailed",
    "InvalidRequest",
    "MemoryClient",
    "MemoryServiceError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "error_from_response",
]
