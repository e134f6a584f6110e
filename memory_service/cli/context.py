"""`memory-service context`: the query-aware context for a scope, as `POST /v1/context` returns it."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any, cast

import typer
from pydantic import ValidationError

from memory_service.cli.common import err, fail, out, run
from memory_service.context.packing import ContextFormat
from memory_service.context.response import context_response
from memory_service.domain import Scope, as_utc
from memory_service.service import MemoryService
from memory_service.settings import Settings


def register(app: typer.Typer) -> None:
    app.command()(context)


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
