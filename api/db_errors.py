"""Database errors that are not bugs: an unreachable database (or other backing service)
answers 503 with Retry-After; a value the database refuses (PostgreSQL and a NUL character
in a query parameter, say) answers 422. Any other error keeps its normal path (a 500 is a
bug to fix). The SQL
engine pings pooled connections before use (`pool_pre_ping`), so once the database is
back the next request gets a fresh connection: the service recovers by itself.
"""

from __future__ import annotations

import errno
import logging
import socket

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2

_ASYNCPG_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,  # cannot connect, connection lost
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now (starting up)
    asyncpg.exceptions.InterfaceError,  # connection closed under us
)


_NETWORK_ERRNOS = {
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
    errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE,
}


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc`, or what it wraps, says the database (or the network to it) is away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True
        if isinstance(current, (*_ASYNCPG_UNAVAILABLE, ConnectionError, TimeoutError)):
            return True
        if isinstance(current, socket.gaierror) or (isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS):
            return True
        wrapped = current.orig if isinstance(current, sa_exc.DBAPIError) else None
        current = wrapped or current.__cause__ or current.__context__
    return False


def is_refused_value(exc: BaseException) -> bool:
    """PostgreSQL refused a value sent to it (invalid byte sequence, value out of range...)."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    cause = getattr(orig, "__cause__", None)
    return isinstance(orig, asyncpg.exceptions.DataError) or isinstance(cause, asyncpg.exceptions.DataError)


async def _service_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if is_refused_value(exc):
        reason = str(exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc).splitlines()[0][:200]
        return JSONResponse(status_code=422, content={"detail": f"the database refused a value of this request: {reason}"})
    if not is_unavailable(exc):
        raise exc
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    log.warning("backing service unavailable for %s %s: %s", request.method, request.url.path, reason)
    return JSONResponse(
        status_code=503,
        content={"detail": f"service unavailable: the database cannot be reached, retry later ({type(exc).__name__}: {reason})"},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_unavailable_handlers(app: FastAPI) -> None:
    for cls in (sa_exc.DBAPIError, sa_exc.TimeoutError, sa_exc.DisconnectionError, asyncpg.PostgresError,
                asyncpg.exceptions.InterfaceError, OSError):
        app.add_exception_handler(cls, _service_unavailable)
