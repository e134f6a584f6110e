"""`memory-service ingest`, `consolidate` and `retry`: put a file into memory, consolidate an owner (or
rebuild the statement keys consolidation finds old units by), compress again what an LM failed on.
Each opens the service (a rebuild: the store and the embedder) on the configured database, without its job runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memory_service.auth import InvalidTenant, check_tenant
from memory_service.cli.common import InputFormat, err, fail, load_events, out, run, settings_with
from memory_service.consolidate.rebuild import NothingToRebuild, RebuildReport, rebuild_with_settings
from memory_service.domain import DEFAULT_TENANT, Scope
from memory_service.ingest.events import check_limits
from memory_service.service import MemoryService
from memory_service.settings import Settings


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(consolidate)
    app.command()(retry)


def ingest(
    file: Annotated[Path, typer.Argument(help="JSONL of events, or a LoCoMo JSON file with --format locomo.")],
    format: Annotated[InputFormat, typer.Option("--format", "-f")] = InputFormat.jsonl,
    compressor: Annotated[str | None, typer.Option(help="Compressor backend (default MEMORY_SERVICE_COMPRESSOR).")] = None,
) -> None:
    """Store events and compress and index them; returns once everything is indexed."""
    events = load_events(file, format)

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


def consolidate(
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    agent_id: Annotated[str | None, typer.Option("--agent-id")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help=f"The owner's tenant (default {DEFAULT_TENANT!r}).")] = None,
    rebuild_statements: Annotated[
        bool,
        typer.Option(
            "--rebuild-statements",
            help="Only re-derive the statement keys of consolidated units (of the owner, the --tenant, or "
            "--all-tenants) with this version's rules, so updates find old memories; changes no memory.",
        ),
    ] = False,
    all_tenants: Annotated[bool, typer.Option("--all-tenants", help="With --rebuild-statements: every tenant.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Units per transaction of a rebuild.")] = 1000,
) -> None:
    """Consolidate one owner's memories now: merge duplicates, close superseded facts, summarise."""
    if tenant is not None:
        try:
            check_tenant(tenant)
        except InvalidTenant as exc:
            fail(str(exc), 2)
    if rebuild_statements:
        _rebuild_statements(tenant, user_id, agent_id, all_tenants, batch_size)
        return
    if all_tenants:
        fail("--all-tenants goes with --rebuild-statements only", 2)
    try:
        owner = Scope(tenant=tenant or DEFAULT_TENANT, user_id=user_id, agent_id=agent_id)
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


def _rebuild_statements(
    tenant: str | None, user_id: str | None, agent_id: str | None, all_tenants: bool, batch_size: int
) -> None:
    """`consolidate --rebuild-statements`: the keys of an owner, a tenant or every tenant."""
    owner = None
    if all_tenants:
        if tenant or user_id or agent_id:
            fail("--all-tenants takes no --tenant, --user-id or --agent-id", 2)
    elif user_id or agent_id:
        owner = Scope(tenant=tenant or DEFAULT_TENANT, user_id=user_id, agent_id=agent_id)
    elif tenant is None:
        fail("nothing to rebuild: give --tenant, --user-id/--agent-id or --all-tenants")

    async def _rebuild() -> RebuildReport:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("rebuilding statement keys", total=None)
            return await rebuild_with_settings(
                Settings(), tenant=None if owner else tenant, owner=owner, batch_size=batch_size,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )

    try:
        report = run(_rebuild)
    except NothingToRebuild as exc:
        fail(str(exc))
    out.print_json(json.dumps({
        "units": report.units, "keys": report.keys, "version": report.version, "tenants_marked": report.tenants_marked
    }))


def retry(
    compressor: Annotated[str | None, typer.Option(help="LM compressor to retry with (default MEMORY_SERVICE_COMPRESSOR).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most events re-queued in this run.")] = 10_000,
) -> None:
    """Compress again the windows an LM compressor failed on (stored meanwhile as extractive units)."""
    from stores.sql.retry import count_marked

    settings = settings_with(compressor)

    async def _retry() -> dict[str, object]:
        service = await MemoryService.open(settings, run_jobs=False)
        try:
            requeued, stats = await service.retry_failed_windows(limit)
            left = await count_marked(service.store, service.compressor.name)
        finally:
            await service.close()
        return {"requeued_events": requeued.events, "stand_in_units_deleted": requeued.units_deleted,
                "units_created": stats.units, "still_marked": left, **stats.lm_summary()}

    out.print_json(json.dumps(run(_retry)))
