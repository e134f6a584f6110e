"""One FAISS index per tenant filtered by an ID selector, vs one index per scope, at 100k units.

    python benchmarks/faiss_partitioning.py --out benchmarks/results/faiss_partitioning.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from stores.vector_index import TenantIndex


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def index_bytes(index: faiss.Index) -> int:
    return int(faiss.serialize_index(index).nbytes)


def run(total: int, dim: int, scope_sizes: list[int], queries: int, k: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    vectors = unit_vectors(rng, total, dim)
    ids = np.arange(1, total + 1, dtype=np.int64)

    started = time.perf_counter()
    tenant = TenantIndex(dim)
    tenant.upsert(ids.tolist(), vectors)
    tenant_build_s = time.perf_counter() - started

    results = []
    for scope_size in scope_sizes:
        scopes = total // scope_size
        started = time.perf_counter()
        per_scope = []
        for s in range(scopes):
            index = TenantIndex(dim)
            lo, hi = s * scope_size, (s + 1) * scope_size
            index.upsert(ids[lo:hi].tolist(), vectors[lo:hi])
            per_scope.append(index)
        per_scope_build_s = time.perf_counter() - started
        per_scope_bytes = sum(index_bytes(i.index) for i in per_scope)

        filtered_ms, partitioned_ms, agree = [], [], 0
        for _ in range(queries):
            s = int(rng.integers(scopes))
            lo, hi = s * scope_size, (s + 1) * scope_size
            allowed = ids[lo:hi].tolist()
            query = unit_vectors(rng, 1, dim)[0]
            t0 = time.perf_counter()
            a = tenant.search(query, k, allowed)
            t1 = time.perf_counter()
            b = per_scope[s].search(query, k)
            t2 = time.perf_counter()
            filtered_ms.append((t1 - t0) * 1000)
            partitioned_ms.append((t2 - t1) * 1000)
            agree += [i for i, _ in a] == [i for i, _ in b]
        results.append(
            {
                "scope_size": scope_size,
                "scopes": scopes,
                "tenant_filtered": {
                    "p50_ms": percentile(filtered_ms, 50),
                    "p95_ms": percentile(filtered_ms, 95),
                    "mean_ms": statistics.fmean(filtered_ms),
                },
                "per_scope": {
                    "p50_ms": percentile(partitioned_ms, 50),
                    "p95_ms": percentile(partitioned_ms, 95),
                    "mean_ms": statistics.fmean(partitioned_ms),
                    "build_s": per_scope_build_s,
                    "bytes": per_scope_bytes,
                    "files": scopes,
                },
                "same_results": agree / queries,
            }
        )
    return {
        "units": total,
        "dim": dim,
        "k": k,
        "queries_per_setting": queries,
        "tenant_index": {"build_s": tenant_build_s, "bytes": index_bytes(tenant.index), "files": 1},
        "settings": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--scope-sizes", default="100,1000,10000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/faiss_partitioning.json"))
    args = parser.parse_args()

    sizes = [int(s) for s in args.scope_sizes.split(",")]
    report = run(args.units, args.dim, sizes, args.queries, args.k, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))

    table = Table(title=f"FAISS search at {args.units:,} units, k={args.k} (ms)")
    for column in ("units/scope", "scopes", "tenant+selector p50", "p95", "per-scope p50", "p95", "per-scope build s", "same top-k"):
        table.add_column(column, justify="right")
    for row in report["settings"]:
        table.add_row(
            f"{row['scope_size']:,}",
            f"{row['scopes']:,}",
            f"{row['tenant_filtered']['p50_ms']:.2f}",
            f"{row['tenant_filtered']['p95_ms']:.2f}",
            f"{row['per_scope']['p50_ms']:.2f}",
            f"{row['per_scope']['p95_ms']:.2f}",
            f"{row['per_scope']['build_s']:.2f}",
            f"{row['same_results']:.0%}",
        )
    Console().print(table)
    Console().print(f"tenant index: build {report['tenant_index']['build_s']:.2f} s, {report['tenant_index']['bytes'] / 1e6:.1f} MB; JSON: {args.out}")


if __name__ == "__main__":
    main()
