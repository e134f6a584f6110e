"""The async engine (SQLite or PostgreSQL), its sessions, and the Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so a CLI and a server can share the file."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # Unicode-aware lower case for SQL (SQLite's lower() folds ASCII only: "Élodie" stays "Élodie").
            dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)

        return engine
    # asyncpg prepares every statement, and after five runs PostgreSQL may switch a prepared
    # statement to its generic plan, one that ignores the parameters. For the full-text
    # queries that plan cannot see how many rows a tsquery matches: at 3x10^5 units one
    # lexical search went from 16 ms to 160-920 ms on its sixth run. Planning each run
    # costs about 2 ms.
    connect_args = {"server_settings": {"plan_cache_mode": "force_custom_plan"}} if "+asyncpg" in url else {}
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args)


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose rows stay readable after commit: results are built after the transaction ends."""
    return async_sessionmaker(engine, expire_on_commit=False)


def dialect_insert(dialect: str, table: Any) -> Any:
    """An INSERT of the engine's dialect, which has `on_conflict_do_nothing`."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# Any constant: the key of the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 0x6D656D5F6D6967  # "mem_mig"


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision` (idempotent).

    On PostgreSQL the migration runs under a transaction-scoped advisory lock: replicas and
    workers started together on a fresh database would otherwise all try to create the
    same tables, and all but one fail (SQLite serialises writers by itself).
    """

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await conn.run_sync(_upgrade)
