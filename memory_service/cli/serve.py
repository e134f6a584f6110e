"""`memory-service serve`, `migrate` and `worker`: run the API, bring the database up to date, run the jobs."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from memory_service.cli.common import fail, out, run
from memory_service.settings import Settings


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(migrate)
    app.command()(worker)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default MEMORY_SERVICE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MEMORY_SERVICE_PORT).")] = None,
) -> None:
    """Run the REST API (and, in embedded mode, the in-process job runner)."""
    import uvicorn

    from api.app import create_app
    from memory_service.logs import configure_logging
    from memory_service.tracing import configure_tracing

    settings = Settings()
    settings.host = host or settings.host
    refused = run(lambda: _binding_refused(settings))
    if refused:
        fail(refused, 2)
    configure_logging(settings.log_format, settings.log_level)
    configure_tracing(settings.tracing, "memory-service-api")
    uvicorn.run(
        create_app(settings), host=host or settings.host, port=port or settings.port, log_config=None, access_log=False
    )


async def _binding_refused(settings: Settings) -> str | None:
    """Why `serve` must not start on this address (no API keys off loopback), or None."""
    from api.auth import BindingRefused, check_binding, is_loopback
    from stores.sql.store import SqlStore

    if is_loopback(settings.host):
        return None
    store = await SqlStore.open(settings.sql_url)
    try:
        await check_binding(settings, store)
    except BindingRefused as exc:
        return str(exc)
    finally:
        await store.close()
    return None


def migrate() -> None:
    """Apply database migrations (also done on every start)."""
    from stores.sql.store import SqlStore

    settings = Settings()

    async def _migrate() -> None:
        store = await SqlStore.open(settings.sql_url)
        await store.close()

    run(_migrate)
    out.print(f"database at {settings.sql_url.split('@')[-1]} is up to date")


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once by this worker.")] = 2,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics on 127.0.0.1:PORT/metrics.")
    ] = None,
) -> None:
    """Run compression and consolidation jobs from Redis (needs MEMORY_SERVICE_REDIS_URL)."""
    from memory_service.worker import run_worker

    settings = Settings()
    if settings.embedded:
        fail("the worker needs MEMORY_SERVICE_REDIS_URL; in embedded mode `serve` runs the jobs itself")
    from memory_service.logs import configure_logging
    from memory_service.tracing import configure_tracing

    configure_logging(settings.log_format, settings.log_level)
    configure_tracing(settings.tracing, "memory-service-worker")
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    asyncio.run(run_worker(settings, concurrency))
