"""Per-key request rate limits: fixed one-minute windows, in Redis when configured, else in process.

A window starts at an identity's first request and lasts `window_s`; the request that
would exceed the limit is refused with the seconds until the window ends (the API turns
that into 429 with `Retry-After`). A fixed window is the simplest limit that is exact
across API replicas with one Redis round trip (an atomic Lua INCR + PEXPIRE); it allows
a burst of up to twice the limit across a window boundary, which is acceptable for abuse
protection. With Redis unreachable, requests are let through (and logged): the limiter
must not take the service down with it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def hit(self, identity: str, limit: int, window_s: float = 60.0) -> float | None:
        """Count one request; None when allowed, else the seconds to wait."""
        ...

    async def close(self) -> None: ...


class InProcessRateLimiter:
    def __init__(self, max_identities: int = 100_000) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._max = max_identities

    async def hit(self, identity: str, limit: int, window_s: float = 60.0) -> float | None:
        now = time.monotonic()
        start, count = self._windows.get(identity, (now, 0))
        if now - start >= window_s:
            start, count = now, 0
        if count >= limit:
            return max(0.0, start + window_s - now)
        if len(self._windows) >= self._max and identity not in self._windows:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window_s}
        self._windows[identity] = (start, count + 1)
        return None

    async def close(self) -> None:
        self._windows.clear()


_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


class RedisRateLimiter:
    """Shared by every API replica. Keys: `<prefix>:<identity>`, expiring with their window."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.redis: Any = Redis.from_url(url)
        self.prefix = prefix
        self._script = self.redis.register_script(_HIT)

    async def hit(self, identity: str, limit: int, window_s: float = 60.0) -> float | None:
        try:
            count, ttl_ms = await self._script(keys=[f"{self.prefix}:{identity}"], args=[int(window_s * 1000)])
        except Exception as exc:  # Redis down: let the request through rather than fail it
            log.warning("rate limiter unavailable (%s); request allowed", exc)
            return None
        if int(count) > limit:
            return max(0.0, int(ttl_ms) / 1000)
        return None

    async def close(self) -> None:
        await self.redis.aclose()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
