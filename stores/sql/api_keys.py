"""The `api_keys` table (migration 0004): key ids, tenants and secret hashes, never secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from memory_service.domain import as_utc, utc_now
from stores.sql.store import SqlStore
from stores.sql.tables import ApiKeyRow


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    tenant: str
    name: str | None
    secret_hash: str
    rate_limit_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        tenant=row.tenant,
        name=row.name,
        secret_hash=row.secret_hash,
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )


class ApiKeyTable:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def insert(
        self, key_id: str, tenant: str, secret_hash: str, name: str | None = None, rate_limit_per_minute: int | None = None
    ) -> ApiKeyRecord:
        row = ApiKeyRow(
            key_id=key_id,
            tenant=tenant,
            name=name,
            secret_hash=secret_hash,
            rate_limit_per_minute=rate_limit_per_minute,
            created_at=utc_now(),
            revoked_at=None,
        )
        async with self.store.session() as session, session.begin():
            session.add(row)
        return _record(row)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self.store.session() as session:
            row = await session.get(ApiKeyRow, key_id)
            return _record(row) if row else None

    async def list_keys(self, tenant: str | None = None, include_revoked: bool = False) -> list[ApiKeyRecord]:
        stmt = select(ApiKeyRow)
        if tenant is not None:
            stmt = stmt.where(ApiKeyRow.tenant == tenant)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        async with self.store.session() as session:
            rows = await session.scalars(stmt.order_by(ApiKeyRow.tenant, ApiKeyRow.created_at, ApiKeyRow.key_id))
            return [_record(r) for r in rows]

    async def revoke(self, key_id: str, tenant: str | None = None) -> bool:
        """Revoke an active key (False: no such active key, or it belongs to another tenant)."""
        stmt = update(ApiKeyRow).where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
        if tenant is not None:
            stmt = stmt.where(ApiKeyRow.tenant == tenant)
        async with self.store.session() as session, session.begin():
            result = await session.execute(stmt.values(revoked_at=utc_now()))
            return bool(result.rowcount)

    async def count(self, active_only: bool = True) -> int:
        stmt = select(func.count()).select_from(ApiKeyRow)
        if active_only:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        async with self.store.session() as session:
            return int(await session.scalar(stmt) or 0)
