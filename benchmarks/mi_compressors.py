"""I(X;Z) of each compressor on LoCoMo and BEAM windows, beside the recall of the same outputs.

    python -m benchmarks.mi_compressors --set locomo=../shared/bench/locomo/locomo_dev.json \
        --set beam=../shared/bench/beam/beam_dev.json --sample 64 --threads 2 \
        --out benchmarks/results/mi_compressors.json

Per set: N windows drawn at random (fixed seed) from all of the file's windows, each compressed
on its own by every compressor (`extractive`, `llama_cpp`, and the references `identity`,
the raw window, and `truncate`, the raw text cut to extractive's token count;
`compressors/reference.py`). Every window's prompt is scored once against the N outputs of
all compressors in one batched pass (`compressors.mi.logprob_matrices`). Reported per
compressor: the estimate in bits with a 95% bootstrap interval, the log N bound, bits per
output token, output tokens, and the text metrics of `memory_service.eval.compression_recall`
(content and answer-token recall of the compressions themselves, no retrieval).

`--lm-windows M` compresses only the first M sampled windows with the LM compressors (the
slow ones); they are then estimated at N=M, and every other compressor is reported at N=M
too, from the same score matrix (its M x M block), so that the ranking at equal N is there.
`--cache PATH` keeps compressions between runs (key: window text, compressor, version).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.output import emit  # noqa: E402
from compressors.base import Compressor, compress_window, create_compressor, is_native  # noqa: E402
from compressors.lm.scoring import LlamaCppScorer  # noqa: E402
from compressors.mi import estimate_mi, logprob_matrices  # noqa: E402
from memory_service.domain import CompressionWindow  # noqa: E402
from memory_service.eval import locomo  # noqa: E402
from memory_service.eval.compression_recall import compression_recall  # noqa: E402
from memory_service.ingest.offline import file_windows, render_compression, render_context, sample_windows  # noqa: E402
from memory_service.settings import Settings  # noqa: E402
from memory_service.tokens import count_tokens  # noqa: E402

console = Console(stderr=True)
DEFAULT_COMPRESSORS = ["identity", "extractive", "truncate", "llama_cpp"]
LM_COMPRESSORS = {"llama_cpp", "transformers", "openai"}


class CompressionFile:
    """Compressions kept between runs, keyed by window text + compressor name and version."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, str] = json.loads(path.read_text()) if path and path.is_file() else {}

    @staticmethod
    def key(window: CompressionWindow, compressor: Compressor) -> str:
        text = f"{compressor.name}\x00{compressor.version}\x00{render_context(window)}"
        return hashlib.sha256(text.encode()).hexdigest()

    def compress(self, compressor: Compressor, window: CompressionWindow) -> tuple[str, dict[str, int]]:
        key = self.key(window, compressor)
        if key in self.data:
            return self.data[key], {"cached": 1}
        result = compress_window(compressor, window)
        self.data[key] = render_compression(result)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data))
        return self.data[key], {"lm_units": result.lm_units, "rejected": result.rejected,
                                "fallback": int(result.fallback is not None)}


def load_set(path: Path, size: int, overlap: int, n: int, seed: int,
             max_tokens: int | None = None) -> tuple[list[CompressionWindow], list[locomo.Question]]:
    """N windows drawn from the file; with `max_tokens`, only from windows whose rendered text
    is at most that many tokens (the N x N scoring costs N^2 times the mean compression)."""
    samples = locomo.load(path)
    events = [e for s in samples for e in locomo.sample_events(s)]
    questions = [q for s in samples for q in locomo.sample_questions(s)]
    scoped = file_windows(events, size, overlap)
    if max_tokens:
        scoped = [(scope, [w for w in ws if count_tokens(render_context(w)) <= max_tokens]) for scope, ws in scoped]
    sampled = sample_windows(scoped, n, seed)
    windows = [w for _, ws in sampled for w in ws]
    for w in windows:
        w.recent_units = []  # each window on its own, the same for every compressor
    return windows, questions


def row(name: str, n: int, contexts: list[str], outputs: list[str], logp: np.ndarray, scorer: LlamaCppScorer,
        windows: list[CompressionWindow], questions: list[locomo.Question], extra: dict[str, Any]) -> dict[str, Any]:
    e = estimate_mi(contexts[:n], outputs[:n], scorer, logp[:n, :n])
    return {
        "compressor": name, "n": n,
        "mi_bits": round(e.bits, 3), "ci_low_bits": round(e.ci_low_bits, 3), "ci_high_bits": round(e.ci_high_bits, 3),
        "log_n_bits": round(math.log2(n), 3), "saturated": e.nats >= 0.99 * e.upper_bound_nats,
        "bits_per_output_token": round(e.bits_per_output_token, 4),
        "output_tokens": round(e.output_tokens, 1), "input_tokens": round(e.input_tokens, 1),
        "compression_ratio": round(e.compression_ratio, 3),
        **compression_recall(windows[:n], outputs[:n], questions).as_dict(),
        **extra,
    }


def run_set(label: str, path: Path, args: argparse.Namespace, backends: dict[str, Compressor],
            scorer: LlamaCppScorer, cache: CompressionFile) -> dict[str, Any]:
    size = dict(args.windows).get(label, args.window_size)
    cap = dict(args.max_tokens).get(label)
    windows, questions = load_set(path, size, args.window_overlap, args.sample, args.seed, cap)
    n = len(windows)
    lm_n = min(n, args.lm_windows or n)
    contexts = [render_context(w) for w in windows]
    outputs: dict[str, list[str]] = {}
    stats: dict[str, dict[str, Any]] = {}
    for name, backend in backends.items():
        count = lm_n if name in LM_COMPRESSORS else n
        started = time.perf_counter()
        totals: dict[str, int] = {}
        texts = []
        for i, window in enumerate(windows[:count]):
            text, info = cache.compress(backend, window)
            texts.append(text)
            for k, v in info.items():
                totals[k] = totals.get(k, 0) + v
            if name in LM_COMPRESSORS:
                console.print(f"{label}: {name} window {i + 1}/{count}", highlight=False)
        outputs[name] = texts
        stats[name] = {"compress_seconds": round(time.perf_counter() - started, 1), **totals}
        console.print(f"{label}: {name} compressed {count} windows in {stats[name]['compress_seconds']} s")
    # Score: all full-N compressors in one pass; the LM ones (M windows) in a second pass over M contexts.
    full = {k: v for k, v in outputs.items() if len(v) == n}
    part = {k: v for k, v in outputs.items() if len(v) < n}
    started = time.perf_counter()
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if done[0] % 8 == 0:
            console.print(f"{label}: scored {done[0]} contexts ({time.perf_counter() - started:.0f} s)", highlight=False)

    matrices = logprob_matrices(contexts, full, scorer, tick)
    full_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if part:
        matrices.update(logprob_matrices(contexts[:lm_n], part, scorer, tick))
    part_seconds = time.perf_counter() - started
    rows = [row(k, len(outputs[k]), contexts, outputs[k], matrices[k], scorer, windows, questions, stats[k])
            for k in backends]
    at_m = []
    if part and lm_n < n:
        at_m = [row(k, lm_n, contexts, outputs[k], matrices[k], scorer, windows, questions, stats[k]) for k in backends]
    return {"set": label, "path": str(path), "window_size": size, "max_window_tokens": cap, "windows": n, "lm_windows": lm_n,
            "score_seconds": round(full_seconds, 1), "lm_score_seconds": round(part_seconds, 1),
            "results": rows, "results_at_lm_windows": at_m}


def table(result: dict[str, Any], key: str, n: int) -> Table:
    t = Table(title=f"{result['set']}: I(X;Z) at N={n}, window {result['window_size']} events")
    for c in ("compressor", "N", "MI bits [95% CI]", "log N", "bits/out tok", "out tok", "content recall", "answer recall"):
        t.add_column(c, justify="left" if c == "compressor" else "right")
    for r in result[key]:
        fmt = (lambda v: "-" if v is None else f"{v:.3f}")  # noqa: E731
        t.add_row(r["compressor"], str(r["n"]), f"{r['mi_bits']:.2f} [{r['ci_low_bits']:.2f}, {r['ci_high_bits']:.2f}]",
                  f"{r['log_n_bits']:.2f}", f"{r['bits_per_output_token']:.4f}", f"{r['output_tokens']:.0f}",
                  fmt(r["content_recall"]), fmt(r["answer_token_recall"]))
    return t


def ranks(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [r["compressor"] for r in sorted(rows, key=lambda r: -(r[key] or 0.0))]


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The compressors ordered by MI and by each recall, and Kendall's tau between them."""
    from scipy.stats import kendalltau

    # estimates at the log N bound (or otherwise equal) do not rank: say so rather than list input order
    separated = len({r["mi_bits"] for r in rows}) > 1 and not all(r["saturated"] for r in rows)
    out: dict[str, Any] = {"mi_separates": separated, "by_mi": ranks(rows, "mi_bits") if separated else None}
    for key in ("content_recall", "answer_token_recall"):
        out[f"by_{key}"] = ranks(rows, key)
        tau = kendalltau([r["mi_bits"] for r in rows], [r[key] or 0.0 for r in rows]).statistic
        out[f"kendall_tau_mi_{key}"] = None if tau != tau else round(float(tau), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", dest="sets", required=True, metavar="NAME=PATH",
                        help="a LoCoMo-shaped file (repeatable)")
    parser.add_argument("--compressor", action="append", dest="compressors", help=f"repeatable; default {DEFAULT_COMPRESSORS}")
    parser.add_argument("--sample", type=int, default=64, help="windows N per set")
    parser.add_argument("--lm-windows", type=int, default=None, help="LM compressors only on the first M of them")
    parser.add_argument("--window-size", type=int, default=Settings().window_size)
    parser.add_argument("--window", action="append", default=[], type=lambda s: (s.split("=")[0], int(s.split("=")[1])),
                        dest="windows", metavar="NAME=EVENTS", help="window size for one set")
    parser.add_argument("--max-tokens", action="append", default=[], type=lambda s: (s.split("=")[0], int(s.split("=")[1])),
                        metavar="NAME=TOKENS", help="draw one set's windows only among those of at most TOKENS tokens")
    parser.add_argument("--window-overlap", type=int, default=0, help="overlap events (shown, not compressed; not scored)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-tokens", type=int, default=None, help="tokens per scoring decode (256 was fastest on 2 CPU cores)")
    parser.add_argument("--scorer-context", type=int, default=4096, help="proxy context: prompt + longest output")
    parser.add_argument("--cache", type=Path, default=None, help="compressions kept here between runs (JSON)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    settings = Settings(llm_threads=args.threads) if args.threads else Settings()
    names = args.compressors or DEFAULT_COMPRESSORS
    backends = {n: create_compressor(n, **settings.compressor_options()) for n in names}
    native = [n for n in names if is_native(n)]
    scorer = LlamaCppScorer(context_tokens=args.scorer_context, threads=settings.llm_threads,
                            batch_tokens=args.batch_tokens)
    cache = CompressionFile(args.cache)
    results = []
    for spec in args.sets:
        label, _, path = spec.partition("=")
        result = run_set(label, Path(path), args, backends, scorer, cache)
        result["agreement"] = agreement(result["results_at_lm_windows"] or result["results"])
        results.append(result)
        out = Console(stderr=True, width=160)
        out.print(table(result, "results", result["windows"]))
        if result["results_at_lm_windows"]:
            out.print(table(result, "results_at_lm_windows", result["lm_windows"]))
        out.print(result["agreement"])
    report = {"command": " ".join(sys.argv), "proxy": scorer.label, "threads": settings.llm_threads,
              "native_compressors": native, "sets": results}
    emit(report, args.out)


if __name__ == "__main__":
    main()
