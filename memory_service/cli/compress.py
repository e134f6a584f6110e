"""`memory-service compress` and `memory-service mi`: run compressors on a file, without a database.

`compress` prints the units a compressor makes (for inspecting a backend or a
prompt); `mi` measures how much information compressions keep about their
windows, with the estimator in `compressors.mi` (scorers in `compressors.lm.scoring`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from compressors.base import Compressor
from compressors.lm.process import LMProcessError
from compressors.lm.scoring import create_scorer
from memory_service.cli.common import InputFormat, err, fail, load_events, out
from memory_service.ingest.offline import (
    MIRow,
    compress_file_windows,
    file_windows,
    measure_mi,
    sample_windows,
)
from memory_service.service import open_compressor
from memory_service.settings import Settings


def register(app: typer.Typer) -> None:
    app.command()(compress)
    app.command()(mi)


def _compressor(name: str, settings: Settings) -> Compressor:
    """The backend, its model in a child process as in the service (MEMORY_SERVICE_LM_ISOLATION)."""
    try:
        return open_compressor(settings, name)
    except (ValueError, FileNotFoundError, ImportError, LMProcessError) as exc:
        fail(f"compressor {name}: {exc}")


def compress(
    file: Annotated[Path, typer.Argument(help="JSONL of events, or a LoCoMo JSON file with --format locomo.")],
    format: Annotated[InputFormat, typer.Option("--format", "-f")] = InputFormat.jsonl,
    compressor: Annotated[str | None, typer.Option(help="Compressor backend (default MEMORY_SERVICE_COMPRESSOR).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Compress only the first N events.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per unit on stdout.")] = False,
) -> None:
    """Print the memory units a compressor makes from a file (nothing is stored)."""
    settings = Settings()
    events = load_events(file, format)[:limit]
    name = compressor or settings.compressor
    backend = _compressor(name, settings)
    run = compress_file_windows(backend, file_windows(events, settings.window_size, settings.window_overlap))
    if as_json:
        for _, result in run.results:
            for unit in result.units:
                data = unit.draft.model_dump(mode="json")
                data.update(compressor=unit.compressor, compressor_version=unit.version)
                if result.fallback:
                    data["fallback"] = result.fallback
                out.print(json.dumps(data, ensure_ascii=False), soft_wrap=True, highlight=False)
    else:
        table = Table(title=f"{name}: {file.name}", show_lines=False)
        for column in ("#", "by", "kind", "events", "text"):
            table.add_column(column, overflow="fold")
        number = 0
        for _, result in run.results:
            for unit in result.units:
                number += 1
                short = ", ".join(i.rsplit("/", 1)[-1] for i in unit.draft.source_event_ids)
                table.add_row(str(number), unit.compressor, unit.draft.kind, short, unit.draft.text)
        out.print(table)
    err.print_json(json.dumps({"compressor": name, **run.summary()}))


def mi_table(rows: Sequence[MIRow], title: str) -> Table:
    table = Table(title=title)
    for column in ("compressor", "N", "I (nats)", "I (bits)", "95% CI (bits)", "bound (bits)", "bits/out token", "out tok", "in tok", "ratio", "fallbacks", "rejected"):
        table.add_column(column, justify="right" if column != "compressor" else "left")
    for row in rows:
        d = row.as_dict()
        table.add_row(
            row.compressor,
            str(d["n"]),
            f"{d['mi_nats']:.3f}",
            f"{d['mi_bits']:.3f}",
            f"{d['ci_low_bits']:.2f}-{d['ci_high_bits']:.2f}",
            f"{d['upper_bound_bits']:.3f}",
            f"{d['bits_per_output_token']:.4f}",
            f"{d['output_tokens']:.0f}",
            f"{d['input_tokens']:.0f}",
            f"{d['compression_ratio']:.3f}",
            str(d.get("fallback_windows", 0)),
            str(d.get("rejected_units", 0)),
        )
    return table


def mi(
    file: Annotated[Path, typer.Argument(help="JSONL of events, or a LoCoMo JSON file with --format locomo.")],
    format: Annotated[InputFormat, typer.Option("--format", "-f")] = InputFormat.jsonl,
    compressor: Annotated[list[str] | None, typer.Option("--compressor", "-c", help="Repeat to compare backends.")] = None,
    sample: Annotated[int, typer.Option(min=2, help="Windows N in the batch (the estimate is at most log N).")] = 16,
    seed: Annotated[int, typer.Option(help="Seed for drawing the windows.")] = 0,
    proxy_model: Annotated[str | None, typer.Option(help="Scoring model: GGUF path, or HF path/id with --proxy-backend transformers (default the packaged SmolLM2 GGUF).")] = None,
    proxy_backend: Annotated[str, typer.Option(help="llama_cpp or transformers.")] = "llama_cpp",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Estimate I(X;Z) between windows of a file and their compressions, per compressor."""
    settings = Settings()
    names = compressor or [settings.compressor]
    events = load_events(file, format)
    sampled = sample_windows(file_windows(events, settings.window_size, settings.window_overlap), sample, seed)
    if sum(len(ws) for _, ws in sampled) < 2:
        fail(f"{file}: fewer than 2 windows; the estimate needs a batch")
    backends = [(name, _compressor(name, settings)) for name in names]
    try:
        scorer = create_scorer(
            proxy_backend, proxy_model, context_tokens=None, threads=settings.llm_threads, device=settings.llm_device
        )
    except (ValueError, FileNotFoundError, ImportError) as exc:
        fail(f"proxy model: {exc}")
    rows = measure_mi(backends, sampled, scorer)
    if as_json:
        out.print_json(json.dumps({"proxy": scorer.label, "results": [r.as_dict() for r in rows]}))
    else:
        out.print(mi_table(rows, f"I(X;Z) on {file.name}, proxy {scorer.label}"))
        if any(r.as_dict()["saturated"] for r in rows):
            err.print("an estimate is at its log N bound: compare with a larger --sample")
