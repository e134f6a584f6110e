"""`memory-service eval locomo` (the `eval` sub-app): run `memory_service.eval` on a LoCoMo-shaped
file (LoCoMo, BEAM converted to its layout) and print its tables."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from memory_service.cli.common import err, fail, out


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(help="Evaluate retrieval quality on benchmark files.", no_args_is_help=True)
    eval_app.command("locomo")(locomo_command)
    app.add_typer(eval_app, name="eval")


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _budgets(value: str) -> list[int]:
    try:
        budgets = [int(part) for part in _csv(value)]
    except ValueError:
        fail(f"--budgets: expected comma-separated integers, got {value!r}", code=2)
    if not budgets or any(b < 1 for b in budgets):
        fail(f"--budgets: expected positive token counts, got {value!r}", code=2)
    return sorted(set(budgets))


def _categories(value: str | None) -> list[int] | None:
    try:
        categories = [int(part) for part in _csv(value)]
    except ValueError:
        fail(f"--headline: expected comma-separated category ids, got {value!r}", code=2)
    return sorted(set(categories)) or None


def locomo_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A LoCoMo-shaped JSON file (../shared/bench/locomo/locomo_dev.json, ../shared/bench/beam/beam_dev.json)."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Write all numbers, the config and per-question details here (JSON).")],
    conversations: Annotated[str | None, typer.Option(help="Comma-separated sample ids (default: all).")] = None,
    budgets: Annotated[str, typer.Option(help="Comma-separated token budgets.")] = "256,512,1024,2048",
    compressor: Annotated[str | None, typer.Option(help="Compressor backend (default MEMORY_SERVICE_COMPRESSOR).")] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Also draw content and answer-token recall vs budget (PNG).")
    ] = None,
    headline: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated categories the overall figures cover (default: those with answerable questions)."
        ),
    ] = None,
    details: Annotated[
        Path | None, typer.Option(help="Write per-question details here instead of into --out (JSON).")
    ] = None,
    worst: Annotated[int, typer.Option(min=0, help="Print and write the N worst questions per category (service, largest budget).")] = 0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the ingested state here (default: a temporary dir, removed after).")
    ] = None,
    consolidate: Annotated[bool, typer.Option(help="Consolidate each conversation after ingest, as the worker would.")] = True,
    bm25_dates: Annotated[
        bool, typer.Option(help="Show BM25's turns under their session dates (one line per session, paid from the budget).")
    ] = True,
) -> None:
    """Ingest a LoCoMo-shaped file, ask every question at every budget; compare with BM25 over raw turns."""
    # Imported here so that other commands do not pay for bm25s/scipy at start-up.
    from memory_service.eval.report import category_table, ingest_line, plot, recall_table, report, worst_table
    from memory_service.eval.run import BM25, OURS, EvalConfig, run_eval

    if not path.is_file():
        fail(f"{path}: no such file")
    config = EvalConfig(
        path=path,
        budgets=_budgets(budgets),
        conversations=_csv(conversations) or None,
        compressor=compressor,
        consolidate=consolidate,
        data_dir=data_dir,
        headline=_categories(headline),
        bm25_dates=bm25_dates,
    )
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as progress:

        def phase(name: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(name, total=total)
            return lambda n: progress.advance(task, n)

        try:
            run = asyncio.run(run_eval(config, phase))
        except json.JSONDecodeError as exc:
            fail(f"{path}: not JSON ({exc})")
        except ValueError as exc:
            fail(str(exc))
        except (KeyError, TypeError) as exc:
            fail(f"{path}: not a LoCoMo file ({exc!r})")

    data = report(run, include_questions=details is None, worst=worst)
    out.print(recall_table(data))
    out.print(category_table(data, OURS))
    out.print(category_table(data, BM25))
    if worst:
        out.print(worst_table(data["worst"]))
    out.print(ingest_line(data), highlight=False)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(data, indent=1))
    out.print(f"JSON: {out_path}", highlight=False)
    if details is not None:
        details.parent.mkdir(parents=True, exist_ok=True)
        details.write_text(json.dumps({"config": data["config"], "questions": [r.to_json() for r in run.records]}, indent=1))
        out.print(f"details: {details}", highlight=False)
    if plot_path is not None:
        plot(data, plot_path)
        out.print(f"plot: {plot_path}", highlight=False)
