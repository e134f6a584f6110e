"""Authentication and rate limiting of API requests (the `Tenant` dependency of every /v1 route).

Keys come in `Authorization: Bearer <key>` or `X-API-Key: <key>`. The authenticated tenant
is put on `request.state.tenant` (and the key id on `request.state.api_key_id`) for logs
and metrics. Open mode (no key ever created, bound to loopback, keys not required) serves
the `local` tenant to keyless requests; a key that is sent is always checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from fastapi import HTTPException, Request

from memory_service.auth import Identity, KeyVerifier
from memory_service.domain import DEFAULT_TENANT
from memory_service.rate_limit import InProcessRateLimiter, RateLimiter, RedisRateLimiter, retry_after_header
from memory_service.settings import Settings
from stores.sql.api_keys import ApiKeyTable
from stores.sql.store import SqlStore

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
HOW_TO_GET_A_KEY = "create one with `memory-service keys create --tenant NAME`"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BindingRefused(RuntimeError):
    """Listening on a non-loopback address with no active API key."""


async def check_binding(settings: Settings, store: SqlStore) -> None:
    """Refuse to serve a non-loopback address without keys: it would expose one open tenant."""
    if is_loopback(settings.host):
        return
    if await ApiKeyTable(store).count(active_only=True) == 0:
        raise BindingRefused(
            f"refusing to listen on {settings.host} without API keys: {HOW_TO_GET_A_KEY}, "
            "or bind to 127.0.0.1 (MEMORY_SERVICE_HOST / --host)"
        )


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    header_key = request.headers.get("x-api-key")
    bearer: str | None = None
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPException(401, "Authorization header must be `Bearer <API key>`", headers=_CHALLENGE)
        bearer = value.strip()
    if bearer is not None and header_key is not None and bearer != header_key.strip():
        raise HTTPException(401, "Authorization and X-API-Key carry different keys; send one", headers=_CHALLENGE)
    return bearer if bearer is not None else (header_key.strip() if header_key is not None else None)


class AccessGuard:
    """Turns a request into an `Identity` (or a 401) and applies its rate limit (or a 429)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.open_allowed = is_loopback(settings.host) and not settings.require_api_keys
        self.limiter: RateLimiter = (
            RedisRateLimiter(settings.redis_url, f"{settings.queue_name}:rate-limit")
            if settings.redis_url
            else InProcessRateLimiter()
        )
        self._verifier: KeyVerifier | None = None

    def verifier(self, store: SqlStore) -> KeyVerifier:
        if self._verifier is None or self._verifier.table.store is not store:
            self._verifier = KeyVerifier(store, self.settings.api_key_cache_seconds)
        return self._verifier

    async def admit(
        self, request: Request, store: SqlStore, key_of: Callable[[Request], str | None] | None = None
    ) -> Identity:
        """Identify the request's caller (401) and apply its rate limit (429); the tenant and key id
        are left on `request.state` for the logs, the metrics and the handlers. `key_of` reads the
        key from elsewhere than the headers (the inspector's cookie)."""
        key = presented_key(request) if key_of is None else key_of(request)
        identity = await self.identify_key(key, store)
        request.state.tenant = identity.tenant
        request.state.api_key_id = identity.key_id
        await self.limit(identity)
        return identity

    async def identify_key(self, key: str | None, store: SqlStore) -> Identity:
        """The identity of `key` (None: no key was sent), or a 401."""
        verifier = self.verifier(store)
        if key is None:
            if self.open_allowed and not await verifier.keys_configured():
                return Identity(DEFAULT_TENANT)
            raise HTTPException(
                401, f"missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>` ({HOW_TO_GET_A_KEY})",
                headers=_CHALLENGE,
            )
        identity = await verifier.verify(key)
        if identity is None:
            raise HTTPException(401, "unknown or revoked API key", headers=_CHALLENGE)
        return identity

    async def limit(self, identity: Identity) -> None:
        if identity.key_id is None:
            return
        limit = identity.rate_limit_per_minute
        if limit is None:
            limit = self.settings.rate_limit_per_minute
        if limit <= 0:
            return
        wait = await self.limiter.hit(identity.key_id, limit, 60.0)
        if wait is not None:
            raise HTTPException(
                429,
                f"rate limit of {limit} requests per minute exceeded for key {identity.key_id}",
                headers={"Retry-After": retry_after_header(wait)},
            )

    async def close(self) -> None:
        await self.limiter.close()
