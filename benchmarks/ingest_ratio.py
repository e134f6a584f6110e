"""Does ingest run at the embedder's speed? (issue 15, item 7)

    python -m benchmarks.ingest_ratio --locomo ../shared/bench/locomo/locomo_dev.json \
        --repeats 5 --out benchmarks/results/ingest_ratio.json

**The ratio.** Units embedded per second end to end, divided by units per second the embedder
alone does on exactly those texts:

    ratio = (units / ingest_s) / (units / embed_alone_s) = embed_alone_s / ingest_s

- `ingest_s`: wall time of `MemoryService.ingest(..., wait=True)` (what `POST /v1/events` with
  `wait` runs) over the LoCoMo conversations, in requests of `max_batch_events`, on a fresh
  embedded data dir (SQLite, FAISS, the packaged MiniLM): validation, token counts, storing the
  events, windows, extractive compression, embedding, storing units and the change log, FAISS
  catch-up. Consolidation (a separate job) is not run: `run_jobs=False`.
- `embed_alone_s`: the same embedder object (`SentenceTransformerEmbedder`, same batch size)
  embedding the texts that ingest sent to it, recorded from that ingest (one text per unit),
  in one `embed` call: the embedder's own best case on those texts.

Both are measured in the same process, interleaved (ingest, embed alone, ingest, ...), after a
warm-up of each, `--repeats` times; the ratio is the median of the per-repeat ratios, so load
from other processes on the machine moves both sides. The texts are checked to be the same in
every repeat. Output: JSON (stdout and `--out`) and a table on stderr.

`--profile PATH` instead runs one ingest under cProfile (the pipeline's worker threads run
inline, so their time is in the profile) and writes the stats there; `--top` rows are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from rich.console import Console
from rich.table import Table

from benchmarks.output import emit
from memory_service.eval import locomo
from memory_service.index.embedding import Embedder, SentenceTransformerEmbedder
from memory_service.schemas import EventIn
from memory_service.service import MemoryService
from memory_service.settings import Settings


class RecordingEmbedder:
    """Wraps an embedder: keeps every text it is asked to embed and the seconds it took."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts: list[str] = []
        self.calls = 0
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.texts.extend(texts)
        return vectors


class StageSeconds(SpanProcessor):
    """Sums the service's own spans (`memory_service.tracing`) by name while `on` is set."""

    def __init__(self) -> None:
        self.on = False
        self.seconds: dict[str, float] = {}

    def on_end(self, span: ReadableSpan) -> None:
        if self.on and span.start_time is not None and span.end_time is not None:
            self.seconds[span.name] = self.seconds.get(span.name, 0.0) + (span.end_time - span.start_time) / 1e9


def stage_recorder() -> StageSeconds:
    recorder = StageSeconds()
    provider = TracerProvider()
    provider.add_span_processor(recorder)
    trace.set_tracer_provider(provider)
    return recorder


async def ingest_once(
    events: dict[str, list[EventIn]], embedder: Embedder, compressor: str, data_dir: Path
) -> tuple[float, RecordingEmbedder, int]:
    """One full ingest on a fresh data dir: (wall seconds, what the embedder saw, units stored)."""
    recording = RecordingEmbedder(embedder)
    service = await MemoryService.open(Settings(data_dir=data_dir, compressor=compressor), embedder=recording, run_jobs=False)
    try:
        batch = service.settings.max_batch_events
        started = time.perf_counter()
        for sample_events in events.values():
            for start in range(0, len(sample_events), batch):
                await service.ingest(sample_events[start : start + batch], wait=True)
        seconds = time.perf_counter() - started
        units = await service.store.count_units()
    finally:
        await service.close()
    return seconds, recording, units


def embed_alone(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - started


async def measure(
    events: dict[str, list[EventIn]], embedder: SentenceTransformerEmbedder, compressor: str, repeats: int, root: Path
) -> dict[str, Any]:
    # Warm-up: torch's first batches and the first service open are slow. It also times the
    # stages (the spans the service opens), which the timed repeats do without.
    stages = stage_recorder()
    stages.on = True
    warm_s, warm, _ = await ingest_once(events, embedder, compressor, root / "warm")
    stages.on = False
    texts = warm.texts
    embed_alone(embedder, texts)
    rows = []
    for r in range(repeats):
        ingest_s, seen, units = await ingest_once(events, embedder, compressor, root / f"run-{r}")
        if seen.texts != texts or units != len(texts):
            raise RuntimeError("ingest embedded other texts than in the warm-up run (or stored another number)")
        alone_s = embed_alone(embedder, texts)
        rows.append({
            "ingest_s": ingest_s,
            "embed_in_ingest_s": seen.seconds,
            "embed_calls": seen.calls,
            "embed_alone_s": alone_s,
            "ratio": alone_s / ingest_s,
        })
    median = statistics.median
    n = len(texts)
    return {
        "compressor": compressor,
        "turns": sum(len(e) for e in events.values()),
        "units": n,
        "unit_chars_mean": sum(map(len, texts)) / n if n else 0.0,
        "embedder": embedder.name,
        "batch_size": embedder.batch_size,
        "torch_threads": _torch_threads(),
        "repeats": rows,
        "ingest_units_per_s": median(n / r["ingest_s"] for r in rows),
        "ingest_turns_per_s": median(sum(len(e) for e in events.values()) / r["ingest_s"] for r in rows),
        "embed_alone_units_per_s": median(n / r["embed_alone_s"] for r in rows),
        "embed_share_of_ingest": median(r["embed_in_ingest_s"] / r["ingest_s"] for r in rows),
        "warmup_stages_s": {"ingest": warm_s, **{k: round(v, 3) for k, v in sorted(stages.seconds.items())}},
        "ratio": median(r["ratio"] for r in rows),
        "ratio_min": min(r["ratio"] for r in rows),
        "ratio_max": max(r["ratio"] for r in rows),
    }


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


@contextmanager
def inline_threads() -> Any:
    """Run `asyncio.to_thread` work on the calling thread, so cProfile (one thread) sees it."""
    original = asyncio.to_thread

    async def inline(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    asyncio.to_thread = inline  # type: ignore[assignment]
    try:
        yield
    finally:
        asyncio.to_thread = original


class LookupEmbedder:
    """Hands back vectors computed beforehand: an ingest with it costs everything but embedding."""

    def __init__(self, inner: Embedder, texts: list[str]) -> None:
        self.name = inner.name
        self.dim = inner.dim
        self.vectors = dict(zip(texts, inner.embed(texts), strict=True))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


async def profile(
    events: dict[str, list[EventIn]], embedder: SentenceTransformerEmbedder, compressor: str, root: Path, out: Path, top: int
) -> None:
    """cProfile of one ingest with the embedding taken out (a `LookupEmbedder`): where the rest goes."""
    _, warm, _ = await ingest_once(events, embedder, compressor, root / "warm")
    lookup = LookupEmbedder(embedder, warm.texts)
    await ingest_once(events, lookup, compressor, root / "warm-lookup")
    plain_s, _, _ = await ingest_once(events, lookup, compressor, root / "plain")
    profiler = cProfile.Profile()
    with inline_threads():
        profiler.enable()
        seconds, seen, _ = await ingest_once(events, lookup, compressor, root / "profiled")
        profiler.disable()
    out.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(out)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print(text.getvalue())
    units = len(warm.texts)
    print(
        f"ingest without embedding: {plain_s:.2f} s ({plain_s / units * 1000:.3f} ms a unit), "
        f"{seconds:.2f} s under cProfile; {units} units; stats: {out}"
    )


def table(report: dict[str, Any]) -> Table:
    out = Table(title=f"Ingest vs the embedder alone ({report['units']} units, {report['compressor']})")
    out.add_column("metric")
    out.add_column("value", justify="right")
    out.add_row("embedder alone, units/s", f"{report['embed_alone_units_per_s']:.1f}")
    out.add_row("ingest end to end, units/s", f"{report['ingest_units_per_s']:.1f}")
    out.add_row("ingest end to end, turns/s", f"{report['ingest_turns_per_s']:.1f}")
    out.add_row("embedding's share of ingest time", f"{report['embed_share_of_ingest']:.2f}")
    out.add_row(
        "ratio (median, min-max)", f"{report['ratio']:.3f} ({report['ratio_min']:.3f}-{report['ratio_max']:.3f})"
    )
    out.add_row("target", ">= 0.9")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locomo", type=Path, default=Path("../shared/bench/locomo/locomo_dev.json"))
    parser.add_argument("--conversations", default="", help="comma-separated sample ids (default all)")
    parser.add_argument("--compressor", default="extractive")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="the embedder's batch size")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of one ingest here instead")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    wanted = [c for c in args.conversations.split(",") if c]
    samples = locomo.select_samples(args.locomo, wanted or None)
    events = {str(s["sample_id"]): locomo.sample_events(s) for s in samples}
    embedder = SentenceTransformerEmbedder(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile is not None:
            asyncio.run(profile(events, embedder, args.compressor, Path(tmp), args.profile, args.top))
            return
        report = asyncio.run(measure(events, embedder, args.compressor, args.repeats, Path(tmp)))
    report["file"] = str(args.locomo)
    Console(stderr=True).print(table(report))
    emit(report, args.out)


if __name__ == "__main__":
    main()
