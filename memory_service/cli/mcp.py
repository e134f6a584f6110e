"""`memory-service mcp`: the MCP tools over stdio, on this machine's store (embedded or PostgreSQL)."""

from __future__ import annotations

import os

import typer

from memory_service.cli.common import fail, run
from memory_service.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp() -> None:
    """Serve the memory tools over MCP on stdin/stdout (for desktop agents and IDEs).

    The tenant is that of MEMORY_SERVICE_API_KEY, or `local` while no API key exists.
    """
    from memory_service.logs import configure_logging
    from memory_service.tracing import configure_tracing

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)  # stderr: stdout carries the protocol
    configure_tracing(settings.tracing, "memory-service-mcp")  # console spans go to stderr too
    refused = run(lambda: _serve(settings))
    if refused:
        fail(refused, 2)


async def _serve(settings: Settings) -> str | None:
    """Run until stdin closes; returns why it would not start (a bad key), or None."""
    from fastapi import HTTPException

    from api.auth import AccessGuard
    from api.mcp_server import build_mcp
    from memory_service.service import MemoryService
    from stores.sql.store import SqlStore

    store = await SqlStore.open(settings.sql_url)  # the key is checked before the models load
    guard = AccessGuard(settings)
    try:
        identity = await guard.identify_key(os.environ.get("MEMORY_SERVICE_API_KEY") or None, store)
    except HTTPException as exc:
        return f"MEMORY_SERVICE_API_KEY: {exc.detail}"
    finally:
        await guard.close()
        await store.close()
    service = await MemoryService.open(settings)
    try:
        await build_mcp(lambda: service, lambda _ctx: identity.tenant).run_stdio_async()
    finally:
        await service.close()
    return None
