"""Running compressors on events outside the service (no database): for `compress`, `mi` and benchmarks."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compressors.base import Compressor, ProducedDraft, WindowResult, compress_window
from compressors.lm.client import SequenceScorer
from compressors.mi import MIEstimate, estimate_mi
from memory_service.domain import DEFAULT_TENANT, CompressionWindow, Event, EventIn, MemoryUnit, Scope, utc_now
from memory_service.ingest.events import to_events
from memory_service.ingest.pipeline import RECENT_UNITS, windows


def file_windows(events: Sequence[EventIn], size: int, overlap: int) -> list[tuple[Scope, list[CompressionWindow]]]:
    """The windows the pipeline would cut, per scope (events in time order within each)."""
    by_scope: dict[Scope, list[Event]] = {}
    for event in to_events(DEFAULT_TENANT, events):
        by_scope.setdefault(event.scope, []).append(event)
    return [
        (scope, windows(sorted(scope_events, key=lambda e: e.timestamp), size, overlap))
        for scope, scope_events in by_scope.items()
    ]


def as_unit(unit: ProducedDraft, scope: Scope, unit_id: int) -> MemoryUnit:
    """A draft shown to later windows as a recent unit (never stored)."""
    moment = unit.draft.event_time or utc_now()
    return MemoryUnit(
        **unit.draft.model_dump(),
        id=unit_id,
        tenant=scope.tenant,
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        session_id=scope.session_id,
        valid_from=moment,
        compressor=unit.compressor,
        compressor_version=unit.version,
        hash=unit.draft.content_hash(),
        created_at=moment,
        updated_at=moment,
    )


@dataclass
class FileRun:
    results: list[tuple[CompressionWindow, WindowResult]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        rs = [r for _, r in self.results]
        events = sum(len(w.events) for w, _ in self.results)
        return {
            "windows": len(rs),
            "events": events,
            "units": sum(len(r.units) for r in rs),
            "lm_units": sum(r.lm_units for r in rs),
            "rejected_units": sum(r.rejected for r in rs),
            "repaired_units": sum(r.repaired for r in rs),
            "fallback_windows": sum(r.fallback is not None for r in rs),
            "lm_calls": sum(r.lm_calls for r in rs),
            "lm_prompt_tokens": sum(r.prompt_tokens for r in rs),
            "lm_completion_tokens": sum(r.completion_tokens for r in rs),
            "seconds": round(self.seconds, 2),
        }


def compress_file_windows(
    compressor: Compressor, scoped: Sequence[tuple[Scope, list[CompressionWindow]]], recent: bool = True
) -> FileRun:
    """Compress windows in order, showing each the units made for its scope so far (as ingest does)."""
    run = FileRun()
    started = time.perf_counter()
    next_id = 1
    for scope, scope_windows in scoped:
        shown: list[MemoryUnit] = []
        for window in scope_windows:
            window.recent_units = shown[-RECENT_UNITS:] if recent else []
            result = compress_window(compressor, window)
            run.results.append((window, result))
            for unit in result.units:
                shown.append(as_unit(unit, scope, next_id))
                next_id += 1
    run.seconds = time.perf_counter() - started
    return run


def render_context(window: CompressionWindow) -> str:
    """A window as the MI proxy model reads it (the raw events, no date resolution)."""
    return "\n".join(f"{e.timestamp:%Y-%m-%d %H:%M} {e.speaker_name}: {e.full_text()}" for e in window.events)


def render_compression(result: WindowResult) -> str:
    return "\n".join(u.draft.text for u in result.units)


@dataclass
class MIRow:
    compressor: str
    estimate: MIEstimate
    compress_seconds: float
    score_seconds: float
    summary: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        e = self.estimate
        return {
            "compressor": self.compressor,
            "n": e.n,
            "mi_nats": round(e.nats, 4),
            "mi_bits": round(e.bits, 4),
            "ci_low_bits": round(e.ci_low_bits, 4),  # 95% bootstrap over windows
            "ci_high_bits": round(e.ci_high_bits, 4),
            "upper_bound_bits": round(e.upper_bound_nats / math.log(2), 4),
            # at the log N bound the batch cannot tell compressors apart: use a larger N
            "saturated": e.n > 1 and e.nats >= 0.99 * e.upper_bound_nats,
            "bits_per_output_token": round(e.bits_per_output_token, 5),
            "output_tokens": round(e.output_tokens, 1),
            "input_tokens": round(e.input_tokens, 1),
            "compression_ratio": round(e.compression_ratio, 4),
            "compress_seconds": round(self.compress_seconds, 2),
            "score_seconds": round(self.score_seconds, 2),
            **{k: v for k, v in self.summary.items() if k in ("fallback_windows", "rejected_units", "lm_units")},
        }


def sample_windows(
    scoped: Sequence[tuple[Scope, list[CompressionWindow]]], n: int, seed: int
) -> list[tuple[Scope, list[CompressionWindow]]]:
    """`n` windows drawn at random (fixed seed), grouped back by scope in their original order."""
    flat = [(s, i, w) for s, ws in scoped for i, w in enumerate(ws)]
    chosen = sorted(random.Random(seed).sample(range(len(flat)), min(n, len(flat))))
    grouped: dict[Scope, list[CompressionWindow]] = {}
    for index in chosen:
        scope, _, window = flat[index]
        grouped.setdefault(scope, []).append(window)
    return list(grouped.items())


def measure_mi(
    compressors: Sequence[tuple[str, Compressor]],
    sampled: Sequence[tuple[Scope, list[CompressionWindow]]],
    scorer: SequenceScorer,
) -> list[MIRow]:
    """MI of each compressor's output on the same windows, scored by the same proxy."""
    contexts = [render_context(w) for _, ws in sampled for w in ws]
    rows = []
    for name, backend in compressors:
        # windows are compressed on their own (no recent units), the same for every backend
        run = compress_file_windows(backend, sampled, recent=False)
        compressions = [render_compression(r) for _, r in run.results]
        started = time.perf_counter()
        estimate = estimate_mi(contexts, compressions, scorer)
        rows.append(MIRow(name, estimate, run.seconds, time.perf_counter() - started, run.summary()))
    return rows


