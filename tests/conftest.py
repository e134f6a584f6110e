"""Shared fixtures: the real packaged embedding model, a fresh PostgreSQL database, data dirs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from compressors.lm.process import describe_exit
from memory_service.index.embedding import SentenceTransformerEmbedder
from memory_service.settings import Settings
from tests.server import create_database, drop_database

PG_ADMIN_DSN = os.environ.get("MEMORY_SERVICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MEMORY_SERVICE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: object) -> None:
    """Say how an xdist worker died (SIGSEGV, SIGABRT, SIGKILL...) in the failed test's report.

    The suite runs in an xdist worker (`-n 1` in pyproject's addopts): a native crash in a
    test (llama.cpp, torch) kills that worker only; xdist fails the test, starts a new
    worker and the run goes on to its summary line.
    """
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    popen = getattr(getattr(gateway, "_io", None), "popen", None)
    if popen is None:
        return
    try:
        code = popen.wait(10)
    except Exception:
        return
    report.longrepr = f"{report.longrepr}: the worker {describe_exit(code)}"


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name, url = await create_database(PG_ADMIN_DSN)
    yield url
    await drop_database(PG_ADMIN_DSN, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs a test against both SQL backends."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def make_api_key() -> Callable[..., Awaitable[str]]:
    """`key = await make_api_key(settings.sql_url, "tenant-a")`: a real API key in that database.

    From then on that service wants a key on every request (send it as `Authorization: Bearer`
    or `X-API-Key`). Sync code can use `InProcessService.create_key(tenant)` or
    `memory-service keys create --tenant NAME` (prints the key on stdout).
    """

    async def make(sql_url: str, tenant: str = "tenant-a", rate_limit_per_minute: int | None = None) -> str:
        from memory_service.auth import create_key
        from stores.sql.store import SqlStore

        store = await SqlStore.open(sql_url)
        try:
            return (await create_key(store, tenant, rate_limit_per_minute=rate_limit_per_minute)).key
        finally:
            await store.close()

    return make
