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

Beside it, the prior gain of each compressor (`compressors.mi.prior_gain`): the mean bits its
window adds to the proxy's log-likelihood of its compression over the same prompt with no
events. It needs 2N scorings, not N^2, and is not bounded by log N; `--no-contrastive` computes
only it, for full-size windows where N^2 scorings do not fit. `--max-tokens NAME=T` draws a
set's windows only among those of at most T tokens (reported: windows in the file, eligible).

`--lm-windows M` compresses only the first M sampled windows with the LM compressors (the
slow ones); they are then estimated at N=M, and every other compressor is reported at N=M
too, from the same score matrix (its M x M block), so that the ranking at equal N is there.
`--cache PATH` keeps compressions between runs (key: window text, compressor, version).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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
from compressors.mi import (  # noqa: E402
    estimate_mi,
    logprob_matrices,
    own_and_prior_logprobs,
    paired_difference,
    prior_gain,
    prior_logprobs,
)
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
             max_tokens: int | None = None) -> tuple[list[CompressionWindow], list[locomo.Question], dict[str, int]]:
    """N windows drawn from the file, its questions, and how many windows it has (`in_file`) and
    could be drawn (`eligible`): with `max_tokens`, only windows whose rendered text is at most
    that many tokens (the N x N scoring costs N^2 times the mean compression)."""
    samples = locomo.load(path)
    events = [e for s in samples for e in locomo.sample_events(s)]
    questions = [q for s in samples for q in locomo.sample_questions(s)]
    scoped = file_windows(events, size, overlap)
    counts = {"in_file": sum(len(ws) for _, ws in scoped)}
    if max_tokens:
        scoped = [(scope, [w for w in ws if count_tokens(render_context(w)) <= max_tokens]) for scope, ws in scoped]
    counts["eligible"] = sum(len(ws) for _, ws in scoped)
    sampled = sample_windows(scoped, n, seed)
    windows = [w for _, ws in sampled for w in ws]
    for w in windows:
        w.recent_units = []  # each window on its own, the same for every compressor
    return windows, questions, counts


def row(name: str, n: int, contexts: list[str], outputs: list[str], logp: np.ndarray | None, own: np.ndarray,
        prior: np.ndarray, scorer: LlamaCppScorer, windows: list[CompressionWindow], questions: list[locomo.Question],
        extra: dict[str, Any]) -> dict[str, Any]:
    out_tokens = [len(scorer.text_tokens(z)) for z in outputs[:n]]
    in_tokens = [len(scorer.text_tokens(x)) for x in contexts[:n]]
    gain = prior_gain(own[:n], prior[:n], out_tokens)
    result: dict[str, Any] = {
        "compressor": name, "n": n,
        "mi_bits": None, "ci_low_bits": None, "ci_high_bits": None, "log_n_bits": round(math.log2(n), 3), "saturated": None,
        "bits_per_output_token": None,
        "prior_gain_bits": round(gain.bits, 3), "prior_gain_ci_low_bits": round(gain.ci_low_bits, 3),
        "prior_gain_ci_high_bits": round(gain.ci_high_bits, 3),
        "prior_gain_bits_per_output_token": round(gain.bits_per_output_token, 4),
        "prior_gain_per_window_bits": [round(b, 3) for b in gain.per_item_bits],
        "output_tokens": round(sum(out_tokens) / n, 1), "input_tokens": round(sum(in_tokens) / n, 1),
        "compression_ratio": round(sum(out_tokens) / sum(in_tokens), 3) if sum(in_tokens) else 0.0,
    }
    if logp is not None:
        e = estimate_mi(contexts[:n], outputs[:n], scorer, logp[:n, :n])
        result.update({
            "mi_bits": round(e.bits, 3), "ci_low_bits": round(e.ci_low_bits, 3), "ci_high_bits": round(e.ci_high_bits, 3),
            "saturated": e.nats >= 0.99 * e.upper_bound_nats, "bits_per_output_token": round(e.bits_per_output_token, 4),
        })
    return {**result, **compression_recall(windows[:n], outputs[:n], questions).as_dict(), **extra}


def score(contexts: list[str], outputs: dict[str, list[str]], scorer: LlamaCppScorer, contrastive: bool,
          tick: Any) -> tuple[dict[str, np.ndarray | None], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(N x N matrices or None, own log p(z_i|x_i), prior log p(z_i|no events)) per compressor."""
    if not outputs:
        return {}, {}, {}
    if contrastive:
        matrices: dict[str, np.ndarray | None] = dict(logprob_matrices(contexts, outputs, scorer, tick))
        own = {k: np.diag(m) for k, m in matrices.items() if m is not None}
        return matrices, own, prior_logprobs(outputs, scorer)
    own, prior = own_and_prior_logprobs(contexts, outputs, scorer, tick)
    return dict.fromkeys(outputs), own, prior


def run_set(label: str, path: Path, args: argparse.Namespace, backends: dict[str, Compressor],
            scorer: LlamaCppScorer, cache: CompressionFile) -> dict[str, Any]:
    size = dict(args.windows).get(label, args.window_size)
    cap = dict(args.max_tokens).get(label)
    windows, questions, counts = load_set(path, size, args.window_overlap, args.sample, args.seed, cap)
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

    matrices, own, prior = score(contexts, full, scorer, args.contrastive, tick)
    full_seconds = time.perf_counter() - started
    started = time.perf_counter()
    more = score(contexts[:lm_n], part, scorer, args.contrastive, tick)
    for mine, extra in zip((matrices, own, prior), more, strict=True):
        mine.update(extra)  # type: ignore[attr-defined]
    part_seconds = time.perf_counter() - started
    rows = [row(k, len(outputs[k]), contexts, outputs[k], matrices[k], own[k], prior[k], scorer, windows, questions, stats[k])
            for k in backends]
    at_m = []
    if part and lm_n < n:
        at_m = [row(k, lm_n, contexts, outputs[k], matrices[k], own[k], prior[k], scorer, windows, questions, stats[k])
                for k in backends]
    return {"set": label, "path": str(path), "window_size": size, "max_window_tokens": cap,
            "windows_in_file": counts["in_file"], "windows_eligible": counts["eligible"], "windows": n,
            "lm_windows": lm_n, "contrastive": args.contrastive,
            "score_seconds": round(full_seconds, 1), "lm_score_seconds": round(part_seconds, 1),
            "results": rows, "results_at_lm_windows": at_m}


def table(result: dict[str, Any], key: str, n: int) -> Table:
    t = Table(title=f"{result['set']}: I(X;Z) at N={n}, window {result['window_size']} events")
    for c in ("compressor", "N", "MI bits [95% CI]", "log N", "prior gain bits [95% CI]", "gain bits/out tok",
              "out tok", "content recall", "answer recall"):
        t.add_column(c, justify="left" if c == "compressor" else "right")
    for r in result[key]:
        fmt = (lambda v: "-" if v is None else f"{v:.3f}")  # noqa: E731
        mi = "-" if r["mi_bits"] is None else f"{r['mi_bits']:.2f} [{r['ci_low_bits']:.2f}, {r['ci_high_bits']:.2f}]"
        gain = f"{r['prior_gain_bits']:.1f} [{r['prior_gain_ci_low_bits']:.1f}, {r['prior_gain_ci_high_bits']:.1f}]"
        t.add_row(r["compressor"], str(r["n"]), mi, f"{r['log_n_bits']:.2f}", gain,
                  f"{r['prior_gain_bits_per_output_token']:.3f}", f"{r['output_tokens']:.0f}",
                  fmt(r["content_recall"]), fmt(r["answer_token_recall"]))
    return t


def ranks(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [r["compressor"] for r in sorted(rows, key=lambda r: -(r[key] or 0.0))]


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The compressors ordered by each estimate and by each recall, and Kendall's tau between them."""
    from scipy.stats import kendalltau

    # estimates at the log N bound (or otherwise equal) do not rank: say so rather than list input order
    contrastive = all(r["mi_bits"] is not None for r in rows)
    separated = contrastive and len({r["mi_bits"] for r in rows}) > 1 and not all(r["saturated"] for r in rows)
    out: dict[str, Any] = {"mi_separates": separated if contrastive else None,
                           "by_mi": ranks(rows, "mi_bits") if separated else None,
                           "by_prior_gain": ranks(rows, "prior_gain_bits")}
    # each compressor against the next in the prior-gain order, window by window
    ordered = sorted(rows, key=lambda r: -r["prior_gain_bits"])
    out["prior_gain_paired"] = [
        dict(zip(("better", "worse", "mean_bits", "ci_low_bits", "ci_high_bits"), (a["compressor"], b["compressor"], *(
            round(v, 2) for v in paired_difference(a["prior_gain_per_window_bits"], b["prior_gain_per_window_bits"])
        )), strict=True))
        for a, b in itertools.pairwise(ordered)
    ]
    for key in ("content_recall", "answer_token_recall"):
        out[f"by_{key}"] = ranks(rows, key)
        for estimate, label in (("mi_bits", "mi"), ("prior_gain_bits", "prior_gain")):
            if estimate == "mi_bits" and not contrastive:
                out[f"kendall_tau_{label}_{key}"] = None
                continue
            tau = kendalltau([r[estimate] for r in rows], [r[key] or 0.0 for r in rows]).statistic
            out[f"kendall_tau_{label}_{key}"] = None if tau != tau else round(float(tau), 3)
    return out


def name_and_number(spec: str) -> tuple[str, int]:
    """NAME=NUMBER, as --window and --max-tokens take it."""
    name, _, number = spec.partition("=")
    return name, int(number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", dest="sets", required=True, metavar="NAME=PATH",
                        help="a LoCoMo-shaped file (repeatable)")
    parser.add_argument("--compressor", action="append", dest="compressors", help=f"repeatable; default {DEFAULT_COMPRESSORS}")
    parser.add_argument("--sample", type=int, default=64, help="windows N per set")
    parser.add_argument("--lm-windows", type=int, default=None, help="LM compressors only on the first M of them")
    parser.add_argument("--window-size", type=int, default=Settings().window_size)
    parser.add_argument("--window", action="append", default=[], type=name_and_number,
                        dest="windows", metavar="NAME=EVENTS", help="window size for one set")
    parser.add_argument("--max-tokens", action="append", default=[], type=name_and_number,
                        metavar="NAME=TOKENS", help="draw one set's windows only among those of at most TOKENS tokens")
    parser.add_argument("--window-overlap", type=int, default=0, help="overlap events (shown, not compressed; not scored)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-contrastive", dest="contrastive", action="store_false",
                        help="only the prior gain (2N scorings), not the N x N contrastive estimate")
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
