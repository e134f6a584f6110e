"""Who is using the inspector: the API key the login page stored in a session cookie, checked like
a REST request's (same keys, same open `local` mode on loopback, same rate limit).

The cookie is HttpOnly, SameSite=Strict and scoped to /ui; requests that change something must
also come from htmx (`HX-Request`), a header another site's form cannot send.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import AccessGuard

COOKIE = "memory_ui_key"


class LoginRequired(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def ui_tenant(request: Request) -> str:
    guard: AccessGuard = request.app.state.guard
    try:
        identity = await guard.admit(request, request.app.state.service.store, lambda r: r.cookies.get(COOKIE) or None)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        raise LoginRequired(str(exc.detail)) from None
    return identity.tenant


def require_htmx(request: Request) -> None:
    if request.headers.get("hx-request") != "true":
        raise HTTPException(403, "changes are made from the inspector's pages only")


async def to_login(request: Request, exc: LoginRequired) -> Response:
    target = f"/ui/login?next={quote(request.url.path)}&reason={quote(exc.reason)}"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def remember_key(response: Response, key: str) -> None:
    # No max-age: a session cookie, gone when the browser closes.
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/ui")


def forget_key(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui")
