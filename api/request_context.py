"""Request ids and access logs.

Every request gets an id: the client's `X-Request-ID` when it is a sane token, else a new
one. It is echoed in the response header and, through `memory_service.logs`, attached to
every log record written while the request is handled, with the tenant (the auth
dependency's `request.state.tenant`, else the local tenant).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import route_template
from memory_service.logs import current_tenant, request_id_var, request_state_var

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

access_log = logging.getLogger("memory_service.access")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER.encode():
            text = value.decode("latin-1").strip()
            if _SANE.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


# PostgreSQL refuses NUL in text while SQLite keeps it: refused here so both backends agree.
NUL_IN_URL = JSONResponse({"detail": "NUL characters (%00) are not accepted in the URL path or query"}, status_code=422)


def has_nul(scope: Scope) -> bool:
    return "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        id_token = request_id_var.set(request_id)
        state_token = request_state_var.set(scope.setdefault("state", {}))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            if has_nul(scope):
                await NUL_IN_URL(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            access_log.exception("unhandled error in %s %s", scope.get("method"), route_template(scope))
            raise
        finally:
            route = route_template(scope)
            access_log.info(
                "%s %s %d",
                scope.get("method"),
                scope.get("path"),
                status,
                extra={
                    "method": scope.get("method"),
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "tenant": current_tenant(),
                },
            )
            request_id_var.reset(id_token)
            request_state_var.reset(state_token)


def install_request_context(app: FastAPI) -> None:
    app.add_middleware(RequestContextMiddleware)
