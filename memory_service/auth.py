"""Per-tenant API keys: format, hashing, creation and verification.

A key reads `ms_<key id>_<secret>`: `ms_` makes it recognisable (secret scanners, logs),
the key id (12 hex digits) finds its row and is what `keys list` and logs show, and the
secret is 32 random bytes (urlsafe base64). The secret is shown once, at creation; the
table keeps only `sha256(secret)`.

Why sha256 and not bcrypt/argon2: those are slow on purpose, to make guessing *low-entropy*
passwords expensive. A 256-bit random secret cannot be guessed at any hash speed, so a
slow hash would add no protection, only ~50-100 ms of CPU to every request (or force a
cache of plaintext-equivalent results). Comparison is constant-time.

The tenant of a request is the tenant of its key; nothing in a request body can choose it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from stores.sql.api_keys import ApiKeyRecord, ApiKeyTable
from stores.sql.store import SqlStore

KEY_PREFIX = "ms"
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_KEY = re.compile(r"^ms_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class InvalidTenant(ValueError):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.match(key.strip())
    return (match.group(1), match.group(2)) if match else None


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant):
        raise InvalidTenant(
            f"invalid tenant {tenant!r}: 1-128 characters, letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return tenant


@dataclass(frozen=True)
class CreatedKey:
    key: str  # the full key: shown once, never stored
    record: ApiKeyRecord


async def create_key(
    store: SqlStore, tenant: str, name: str | None = None, rate_limit_per_minute: int | None = None
) -> CreatedKey:
    check_tenant(tenant)
    if rate_limit_per_minute is not None and rate_limit_per_minute < 0:
        raise ValueError("rate limit must be >= 0 (0 = unlimited)")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = await ApiKeyTable(store).insert(key_id, tenant, hash_secret(secret), name, rate_limit_per_minute)
    return CreatedKey(f"{KEY_PREFIX}_{key_id}_{secret}", record)


@dataclass(frozen=True)
class Identity:
    """Who a request is: its tenant, and the key it used (None: the keyless local tenant)."""

    tenant: str
    key_id: str | None = None
    rate_limit_per_minute: int | None = None


class KeyVerifier:
    """Checks presented keys against the table, caching rows for `cache_seconds`.

    The cache bounds how long a revoked key keeps working (another process, e.g. the CLI,
    revokes it): at most `cache_seconds`, 0 = a database read per request.
    """

    def __init__(self, store: SqlStore, cache_seconds: float = 2.0) -> None:
        self.table = ApiKeyTable(store)
        self.cache_seconds = cache_seconds
        self._rows: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._configured: tuple[float, bool] | None = None

    async def keys_configured(self) -> bool:
        """Whether any key was ever created (revoked ones count: revoking the last key must not open the service)."""
        now = time.monotonic()
        if self._configured is not None and self._configured[0] > now:
            return self._configured[1]
        configured = await self.table.count(active_only=False) > 0
        self._configured = (now + self.cache_seconds, configured)
        return configured

    async def verify(self, key: str) -> Identity | None:
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        cached = self._rows.get(key_id)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            record = await self.table.get(key_id)
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[key_id] = (now + self.cache_seconds, record)
        if record is None or not record.active:
            return None
        if not hmac.compare_digest(record.secret_hash, hash_secret(secret)):
            return None
        return Identity(record.tenant, record.key_id, record.rate_limit_per_minute)
