"""`memory-service doctor`: print the checks of `memory_service.doctor` and exit 1 when a required one fails."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from memory_service.cli.common import err, fail, out, run
from memory_service.settings import Settings


def register(app: typer.Typer) -> None:
    app.command()(doctor)


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
