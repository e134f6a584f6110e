"""Exact (flat) vs approximate (IVF) tenant indexes as a tenant grows: query time, recall@50
against exact search, build, save and load time, and index size.

Vectors: real all-MiniLM-L6-v2 embeddings of the dev sets' turns (LoCoMo and BEAM), replicated
with Gaussian noise (sigma `--noise` per component, renormalised) up to each size; queries:
real embeddings of the dev sets' questions. Each IVF index is built the way a tenant's is
(`stores.vector_index.build_ivf` with `AnnConfig`), then probed at each `--nprobe`.

    python -m benchmarks.ann_index --sizes 10000,100000,300000 --out benchmarks/results/ann_index.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.progress import track

from benchmarks.consolidation_scale import noisy
from benchmarks.output import emit
from memory_service.eval import locomo
from memory_service.index.embedding import SentenceTransformerEmbedder
from stores.vector_index import AnnConfig, build_ivf

DEV_SETS = (Path("../shared/bench/locomo/locomo_dev.json"), Path("../shared/bench/beam/beam_dev.json"))


def texts(paths: tuple[Path, ...]) -> tuple[list[str], list[str]]:
    """(turn texts, questions) of the dev sets, turns cut to 1000 characters."""
    turns: list[str] = []
    questions: list[str] = []
    for path in paths:
        for sample in locomo.select_samples(path, None):
            turns += [t.content[:1000] for t in locomo.sample_turns(sample)]
            questions += [q.question for q in locomo.sample_questions(sample)]
    return turns, questions


def timed_search(index: faiss.Index, queries: np.ndarray, k: int, params: faiss.SearchParameters | None) -> tuple[np.ndarray, list[float]]:
    found = np.empty((len(queries), k), dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        started = time.perf_counter()
        _, ids = index.search(q.reshape(1, -1), k, params=params)
        times.append((time.perf_counter() - started) * 1000)
        found[i] = ids[0]
    return found, times


def percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3)}


def measure(
    size: int, base: np.ndarray, queries: np.ndarray, nprobes: list[int], sigma: float, seed: int, scope: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vectors = noisy(base[rng.integers(0, len(base), size)], sigma, rng)
    ids = np.arange(size, dtype=np.int64)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    flat.add_with_ids(vectors, ids)
    truth, flat_times = timed_search(flat, queries, 50, None)
    started = time.perf_counter()
    ivf = build_ivf(ids, vectors, AnnConfig())
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ivf.faiss")
        started = time.perf_counter()
        faiss.write_index(ivf, path)
        save_s = time.perf_counter() - started
        size_mb = Path(path).stat().st_size / 2**20
        started = time.perf_counter()
        faiss.read_index(path)
        load_s = time.perf_counter() - started
    probes = {}
    for nprobe in nprobes:
        found, times = timed_search(ivf, queries, 50, faiss.SearchParametersIVF(nprobe=nprobe))
        recall = float(np.mean([len(set(found[i]) & set(truth[i])) / 50 for i in range(len(queries))]))
        probes[str(nprobe)] = {"recall_at_50": round(recall, 4), **percentiles(times)}
    # A user scope inside the tenant: SQL allows `scope` ids; flat and IVF (every list probed) both exact.
    allowed = rng.choice(size, size=min(scope, size), replace=False).astype(np.int64)
    selector = faiss.IDSelectorBatch(allowed)
    scoped_truth, flat_scoped = timed_search(flat, queries, 50, faiss.SearchParameters(sel=selector))
    scoped, ivf_scoped = timed_search(ivf, queries, 50, faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nlist))
    scoped_recall = float(np.mean([len(set(scoped[i]) & set(scoped_truth[i])) / 50 for i in range(len(queries))]))
    return {
        "size": size,
        "scope": {"ids": len(allowed), "flat": percentiles(flat_scoped), "ivf_every_list": percentiles(ivf_scoped),
                  "ivf_recall_at_50": round(scoped_recall, 4)},
        "nlist": int(ivf.nlist),
        "flat": percentiles(flat_times),
        "flat_mb": round(size * vectors.shape[1] * 4 / 2**20, 1),
        "ivf_build_s": round(build_s, 2),
        "ivf_save_s": round(save_s, 3),
        "ivf_load_s": round(load_s, 3),
        "ivf_mb": round(size_mb, 1),
        "ivf_by_nprobe": probes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--nprobe", default="8,16,32,64,128")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--base", type=int, default=3000, help="distinct turns embedded (sampled)")
    parser.add_argument("--noise", type=float, default=0.045)
    parser.add_argument("--scope", type=int, default=10000, help="ids a scoped query is allowed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    turns, questions = texts(DEV_SETS)
    rng = np.random.default_rng(args.seed)
    turns = [turns[i] for i in rng.choice(len(turns), size=min(args.base, len(turns)), replace=False)]
    embedder = SentenceTransformerEmbedder()
    base = np.asarray(embedder.embed(turns), dtype=np.float32)
    picked = [questions[i] for i in rng.choice(len(questions), size=min(args.queries, len(questions)), replace=False)]
    queries = np.asarray(embedder.embed(picked), dtype=np.float32)
    nprobes = [int(n) for n in args.nprobe.split(",")]
    rows = [
        measure(int(s), base, queries, nprobes, args.noise, args.seed, args.scope)
        for s in track(args.sizes.split(","), description="sizes")
    ]
    report = {"base_vectors": len(base), "queries": len(queries), "noise": args.noise, "threads": faiss.omp_get_max_threads(), "rows": rows}
    emit(report, args.out)


if __name__ == "__main__":
    main()
