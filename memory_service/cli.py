"""The `memory-service` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memory_service import locomo
from memory_service.context import ContextFormat
from memory_service.context_api import context_response
from memory_service.domain import EventIn, Scope, as_utc
from memory_service.ingestion import check_limits
from memory_service.service import MemoryService
from memory_service.settings import Settings

app = typer.Typer(help="Agent memory: ingest interaction logs, get query-aware context.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()

T = TypeVar("T")


class InputFormat(StrEnum):
    jsonl = "jsonl"
    locomo = "locomo"


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def settings_with(compressor: str | None = None) -> Settings:
    settings = Settings()
    if compressor:
        settings.compressor = compressor
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default MEMORY_SERVICE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MEMORY_SERVICE_PORT).")] = None,
) -> None:
    """Run the REST API (and, in embedded mode, the in-process job runner)."""
    import uvicorn

    from api.app import create_app
    from memory_service.logs import configure_logging

    settings = Settings()
    settings.host = host or settings.host
    refused = run(lambda: _binding_refused(settings))
    if refused:
        fail(refused, 2)
    configure_logging(settings.log_format, settings.log_level)
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


@app.command()
def migrate() -> None:
    """Apply database migrations (also done on every start)."""
    from stores.sql.store import SqlStore

    settings = Settings()

    async def _migrate() -> None:
        store = await SqlStore.open(settings.sql_url)
        await store.close()

    run(_migrate)
    out.print(f"database at {settings.sql_url.split('@')[-1]} is up to date")


def read_jsonl(path: Path) -> list[EventIn]:
    events: list[EventIn] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(EventIn.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            raise ValueError(f"{path}:{number}: {where}: {first['msg']}") from None
    return events


def read_events(path: Path, fmt: InputFormat) -> list[EventIn]:
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if fmt is InputFormat.locomo:
        try:
            return [e for sample in locomo.load(path) for e in locomo.sample_events(sample)]
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a LoCoMo file ({exc!r})") from None
    return read_jsonl(path)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="JSONL of events, or a LoCoMo JSON file with --format locomo.")],
    format: Annotated[InputFormat, typer.Option("--format", "-f")] = InputFormat.jsonl,
    compressor: Annotated[str | None, typer.Option(help="Compressor backend (default MEMORY_SERVICE_COMPRESSOR).")] = None,
) -> None:
    """Store events and compress and index them; returns once everything is indexed."""
    try:
        events = read_events(file, format)
    except ValueError as exc:
        fail(str(exc))
    if not events:
        fail(f"{file}: no events")

    async def _ingest() -> dict[str, Any]:
        service = await MemoryService.open(settings_with(compressor), run_jobs=False)
        try:
            batch = service.settings.max_batch_events
            for start in range(0, len(events), batch):  # reject a bad file before storing any of it
                check_limits(events[start : start + batch], batch, service.settings.max_event_bytes)
            new = 0
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
            ) as progress:
                task = progress.add_task("storing events", total=len(events))
                for start in range(0, len(events), batch):
                    result = await service.ingest(events[start : start + batch])
                    new += len(result.new_event_ids)
                    progress.advance(task, len(events[start : start + batch]))
                task = progress.add_task("compressing", total=await service.store.count_pending_events())
                stats = await service.compress_pending(lambda n: progress.advance(task, n))
            summary: dict[str, Any] = {"events": len(events), "new_events": new, "units_created": stats.units}
            if service.pipeline.cache_identity is not None:  # an LM compressor: what it did
                summary.update(stats.lm_summary())
            return summary
        finally:
            await service.close()

    try:
        summary = run(_ingest)
    except ValueError as exc:
        fail(str(exc))
    out.print_json(json.dumps(summary))


@app.command()
def context(
    query: Annotated[str, typer.Argument(help="The question or task the predictor is about to answer.")],
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    agent_id: Annotated[str | None, typer.Option("--agent-id")] = None,
    session_id: Annotated[str | None, typer.Option("--session-id")] = None,
    budget: Annotated[int, typer.Option(min=1, help="Token budget of the returned context.")] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole response as JSON.")] = False,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="Answer from the memories valid at this time (ISO-8601).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Context format: text (date-grouped lines), json, or messages.")
    ] = "text",
) -> None:
    """Print the query-aware context for a scope."""
    if fmt not in ("text", "json", "messages"):
        fail(f"unknown --format {fmt!r}: use text, json or messages")
    try:
        scope = Scope(user_id=user_id, agent_id=agent_id, session_id=session_id)
    except ValidationError:
        fail("scope missing: give --user-id or --agent-id")
    if not query.strip():
        fail("query is empty")

    async def _context() -> dict[str, Any]:
        service = await MemoryService.open(Settings(), run_jobs=False)
        try:
            result = await service.context(
                scope, query, budget, cast(ContextFormat, fmt), as_of=as_utc(as_of) if as_of else None
            )
        finally:
            await service.close()
        return context_response(result).model_dump(mode="json")

    response = run(_context)
    if as_json:
        out.print_json(json.dumps(response))
    elif response["empty"]:
        err.print("nothing relevant in memory for this query")
    else:
        sys.stdout.write(response["context"] + "\n")


@app.command()
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

    configure_logging(settings.log_format, settings.log_level)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    asyncio.run(run_worker(settings, concurrency))


@app.command()
def consolidate(
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    agent_id: Annotated[str | None, typer.Option("--agent-id")] = None,
) -> None:
    """Consolidate one owner's memories now: merge duplicates, close superseded facts, summarise."""
    try:
        owner = Scope(user_id=user_id, agent_id=agent_id)
    except ValidationError:
        fail("scope missing: give --user-id or --agent-id")

    async def _consolidate() -> dict[str, Any]:
        service = await MemoryService.open(Settings(), run_jobs=False)
        try:
            await service.compress_scopes(await service.store.pending_scopes())
            report = await service.consolidate(owner)
        finally:
            await service.close()
        return {
            "examined": report.examined,
            "merged": report.merged,
            "superseded": report.superseded,
            "abstractions_created": report.abstractions_created,
            "abstractions_retired": report.abstractions_retired,
        }

    out.print_json(json.dumps(run(_consolidate)))


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the database, Redis, FAISS, GPU, models and tokenizer; exit 1 when a required check fails."""
    from memory_service import doctor as checks_module

    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"invalid configuration: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    checks = run(lambda: checks_module.run_checks(settings))
    failed = any(c.failed for c in checks)
    if as_json:
        sys.stdout.write(checks_module.as_json(checks) + "\n")
    else:
        marks = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]", "info": "[blue]info[/blue]"}
        for check in checks:
            out.print(f"{marks[check.status]} {check.name:<11} {check.detail}", highlight=False, soft_wrap=True)
        if failed:
            err.print("[red]doctor: a required check failed[/red]", highlight=False)
    if failed:
        raise typer.Exit(1)


# `compress` and `mi`, `keys create|list|revoke` and `eval locomo` live in their own modules, which register them on `app`.
from memory_service import compress_cli, eval_cli, keys_cli  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
