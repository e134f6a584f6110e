"""What every `memory-service` command uses: the consoles, `fail`, running a coroutine, reading event files.

The command modules import this and never each other or `main.py`, which builds the app
and hands it to each module's `register`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from memory_service.domain import EventIn
from memory_service.eval import locomo
from memory_service.settings import Settings

err = Console(stderr=True)
out = Console()

T = TypeVar("T")


class InputFormat(StrEnum):
    jsonl = "jsonl"
    locomo = "locomo"


def fail(message: str, code: int = 1) -> NoReturn:
    # One unwrapped line (a path must stay greppable), the message never read as markup.
    err.print("[red]error:[/red]", escape(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def settings_with(compressor: str | None = None) -> Settings:
    settings = Settings()
    if compressor:
        settings.compressor = compressor
    return settings


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


def load_events(path: Path, fmt: InputFormat) -> list[EventIn]:
    """`read_events`, failing the command on a bad or empty file."""
    try:
        events = read_events(path, fmt)
    except ValueError as exc:
        fail(str(exc))
    if not events:
        fail(f"{path}: no events")
    return events
