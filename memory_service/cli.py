"""The `memory-service` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memory_service import locomo
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

    settings = Settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info")


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
) -> None:
    """Print the query-aware context for a scope."""
    try:
        scope = Scope(user_id=user_id, agent_id=agent_id, session_id=session_id)
    except ValidationError:
        fail("scope missing: give --user-id or --agent-id")
    if not query.strip():
        fail("query is empty")

    async def _context() -> dict[str, Any]:
        service = await MemoryService.open(Settings(), run_jobs=False)
        try:
            result = await service.context(scope, query, budget, as_of=as_utc(as_of) if as_of else None)
        finally:
            await service.close()
        return {
            "context": result.context,
            "tokens": result.tokens,
            "empty": result.empty,
            "units": [
                {
                    "id": c.unit.id,
                    "text": c.unit.text,
                    "score": c.score,
                    "kind": c.unit.kind,
                    "event_time": c.unit.event_time.isoformat() if c.unit.event_time else None,
                    "source_event_ids": c.unit.source_event_ids,
                }
                for c in result.chosen
            ],
        }

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
) -> None:
    """Run compression and consolidation jobs from Redis (needs MEMORY_SERVICE_REDIS_URL)."""
    from memory_service.worker import run_worker

    settings = Settings()
    if settings.embedded:
        fail("the worker needs MEMORY_SERVICE_REDIS_URL; in embedded mode `serve` runs the jobs itself")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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


# `compress` and `mi` live in their own module, which registers them on `app`.
from memory_service import compress_cli  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
