"""Compressors side by side: ingest throughput, LM speed, compression, grounding, cache, MI.

    python benchmarks/compressors.py --locomo ../shared/bench/locomo/locomo_dev.json \
        --out benchmarks/results/compressors.json

LM tok/s is completion tokens per second of compression wall time; prompt tok/s and gen
tok/s are prompt processing (tokens actually evaluated: a prefix reused from the KV cache
is not) and generation apart, where the backend measures them (llama.cpp in process;
llama.cpp's llama-server reports `timings`; llama-cpp-python's server does not).

For each dataset (one LoCoMo dev conversation, and a synthetic agent log with tool
calls) and each compressor: a full ingest through `MemoryService` on a fresh SQLite
data dir (compression + embedding + SQL + FAISS), then the same log again under new
ids (the compression cache's hit rate), then I(X;Z) of each compressor's output on
the same sample of windows, scored by the packaged SmolLM2 GGUF. The wall time of a
full dev-split ingest with each compressor is extrapolated from its turns/s.

`--llm-server` also runs the `openai` backend against llama-cpp-python's OpenAI-compatible
server (`llama_cpp.server`, started here on the packaged SmolLM2, `--threads` threads), once
per `--concurrency` (windows in flight), labelled `openai@cN`:

    python -m benchmarks.compressors --locomo ../shared/bench/locomo/locomo_dev.json --max-turns 32 \
        --agent-sessions 0 --mi-sample 0 --threads 1 --compressor llama_cpp \
        --llm-server --concurrency 1 --concurrency 2 --concurrency 4 --out benchmarks/results/lm_service.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compressors.base import Compressor, create_compressor  # noqa: E402
from compressors.lm.scoring import LlamaCppScorer  # noqa: E402
from memory_service.domain import EventIn, Scope, ToolCall  # noqa: E402
from memory_service.eval import locomo  # noqa: E402
from memory_service.index.embedding import Embedder, SentenceTransformerEmbedder  # noqa: E402
from memory_service.ingest.offline import file_windows, measure_mi, sample_windows  # noqa: E402
from memory_service.service import MemoryService  # noqa: E402
from memory_service.settings import Settings  # noqa: E402
from memory_service.tokens import count_tokens  # noqa: E402
from tests.llama_server import llama_cpp_server  # noqa: E402

console = Console(stderr=True)


# --------------------------------------------------------------------------- synthetic agent log

SERVICES = ["billing-api", "search-indexer", "auth-gateway", "report-worker", "media-cdn"]
REGIONS = ["eu-west-1", "us-east-2", "ap-south-1"]
ENGINEERS = ["Priya", "Tomasz", "Aiko", "Lena"]


def synthetic_agent_log(sessions: int, seed: int = 7) -> list[EventIn]:
    """A deployment agent's log: requests, tool calls with arguments and results (some failing), reports."""
    rng = random.Random(seed)
    events: list[EventIn] = []
    t = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    for s in range(sessions):
        who, service, region = rng.choice(ENGINEERS), rng.choice(SERVICES), rng.choice(REGIONS)
        port, replicas, version = rng.choice([5432, 5433, 6379, 8080, 8443, 9090]), rng.randint(2, 12), f"2.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
        session = f"s{s + 1}"

        def add(role: str, content: str = "", speaker: str | None = None, tool: ToolCall | None = None,
                session: str = session) -> None:
            nonlocal t
            t += timedelta(seconds=rng.randint(5, 90))
            events.append(EventIn(event_id=f"agent/{session}/{len(events)}", agent_id="deployer", session_id=session,
                                  role=role, speaker=speaker, content=content, tool=tool, timestamp=t))

        add("user", f"Deploy {service} {version} to {region} with {replicas} replicas; the database is on port {port}.", who)
        add("tool", tool=ToolCall(name="get_status", arguments={"service": service, "region": region},
                                  result={"version": f"2.{rng.randint(0, 9)}.0", "healthy": True, "replicas": rng.randint(1, 6)}))
        add("tool", tool=ToolCall(name="edit_config", arguments={"file": f"deploy/{service}.yaml", "db_port": port, "replicas": replicas},
                                  result={"status": "ok"}))
        tests_ok = rng.random() > 0.3
        add("tool", tool=ToolCall(name="run_tests", arguments={"suite": "smoke", "service": service},
                                  result={"passed": rng.randint(40, 90), "failed": 0 if tests_ok else rng.randint(1, 4)}))
        if tests_ok:
            add("tool", tool=ToolCall(name="deploy", arguments={"service": service, "version": version, "region": region},
                                      result={"status": "ok", "rollout_seconds": rng.randint(30, 300)}))
            add("assistant", f"{service} {version} is live in {region} with {replicas} replicas.", "deployer")
        else:
            add("assistant", f"Smoke tests failed for {service} {version}; I did not deploy. Want me to open an incident?", "deployer")
            add("user", rng.choice(["Yes, open one and page the on-call.", "No, I will look at the failing tests tomorrow."]), who)
        if rng.random() < 0.4:
            add("user", f"Also, from now on I prefer deployments to {region} before 10:00 UTC.", who)
        add("user", "Thanks!", who)
        t += timedelta(hours=rng.randint(3, 40))
    return events


# --------------------------------------------------------------------------- measurements


def renamed(events: list[EventIn], prefix: str) -> list[EventIn]:
    """The same log under new event ids and another owner: what a re-ingest looks like to the cache."""
    out = []
    for e in events:
        data = e.model_dump()
        data["event_id"] = f"{prefix}/{e.event_id}"
        if data.get("user_id"):
            data["user_id"] = f"{prefix}-{data['user_id']}"
        if data.get("agent_id"):
            data["agent_id"] = f"{prefix}-{data['agent_id']}"
        out.append(EventIn.model_validate(data))
    return out


def event_text(e: EventIn) -> str:
    parts = [e.content] if e.content else []
    if e.tool is not None:
        parts.append(f"{e.tool.name}({json.dumps(e.tool.arguments, default=str)}) -> {json.dumps(e.tool.result, default=str)}")
    return "\n".join(parts)


async def ingest_run(service: MemoryService, events: list[EventIn]) -> dict[str, Any]:
    started = time.perf_counter()
    for start in range(0, len(events), service.settings.max_batch_events):
        await service.ingest(events[start : start + service.settings.max_batch_events])
    stats = await service.compress_pending()
    seconds = time.perf_counter() - started
    owners = {Scope(user_id=e.user_id, agent_id=e.agent_id) for e in events}
    units = []
    for owner in owners:
        offset = 0
        while page := await service.list_memories(owner, 1000, offset):
            units.extend(page)
            offset += len(page)
    event_tokens = sum(count_tokens(event_text(e)) for e in events)
    unit_tokens = sum(count_tokens(u.text) for u in units)
    by = {}
    for u in units:
        by[u.compressor] = by.get(u.compressor, 0) + 1
    return {
        "turns": len(events),
        "seconds": round(seconds, 2),
        "turns_per_s": round(len(events) / seconds, 3),
        "units": len(units),
        "units_per_turn": round(len(units) / len(events), 3),
        "units_by_compressor": by,
        "event_tokens": event_tokens,
        "unit_tokens": unit_tokens,
        "compression_ratio": round(unit_tokens / event_tokens, 4),
        # completion tokens per second of compression wall time (windows in flight together overlap)
        "lm_tokens_per_s": round(stats.completion_tokens / stats.lm_wall_seconds, 2) if stats.lm_wall_seconds else None,
        "grounding_rejection_rate": round(stats.rejected / stats.lm_units, 4) if stats.lm_units else None,
        "fallback_window_rate": round(stats.fallbacks / stats.windows, 4) if stats.windows else None,
        "cache_hit_rate": round(stats.cache_hits / stats.windows, 4) if stats.windows and service.pipeline.cache else None,
        **stats.lm_summary(),
    }


async def bench_dataset(
    name: str, events: list[EventIn], backends: dict[str, Compressor], embedder: Embedder, settings: Settings,
    mi_sample: int, scorer: LlamaCppScorer | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"dataset": name, "turns": len(events), "compressors": {}}
    for label, backend in backends.items():
        with tempfile.TemporaryDirectory() as tmp:
            run_settings = Settings(data_dir=Path(tmp), compressor=backend.name, llm_threads=settings.llm_threads)
            service = await MemoryService.open(run_settings, embedder=embedder, compressor=backend, run_jobs=False)
            try:
                console.print(f"[bold]{name}[/bold]: {label}, first ingest of {len(events)} turns")
                first = await ingest_run(service, events)
                console.print(f"[bold]{name}[/bold]: {label}, second ingest (same log, new ids)")
                second = await ingest_run(service, renamed(events, "rerun"))
            finally:
                await service.close()
        out["compressors"][label] = {"first_ingest": first, "second_ingest": second}
    if scorer is not None and mi_sample >= 2:
        console.print(f"[bold]{name}[/bold]: I(X;Z) on {mi_sample} windows")
        sampled = sample_windows(file_windows(events, settings.window_size, settings.window_overlap), mi_sample, seed=0)
        rows = measure_mi(list(backends.items()), sampled, scorer)
        out["mi"] = {"proxy": scorer.label, "results": [r.as_dict() for r in rows]}
    return out


def table(result: dict[str, Any]) -> Table:
    t = Table(title=f"{result['dataset']} ({result['turns']} turns)")
    columns = ["compressor", "turns/s", "LM tok/s", "prompt tok/s", "gen tok/s", "units/turn", "ratio", "rejected", "fallback", "cache hit (2nd)", "2nd run s", "MI bits", "bits/out tok"]
    for c in columns:
        t.add_column(c, justify="left" if c == "compressor" else "right")
    mi = {r["compressor"]: r for r in result.get("mi", {}).get("results", [])}
    for label, runs in result["compressors"].items():
        first, second = runs["first_ingest"], runs["second_ingest"]

        def fmt(v: Any, spec: str = ".3f") -> str:
            return "-" if v is None else format(v, spec)

        t.add_row(
            label, fmt(first["turns_per_s"], ".2f"), fmt(first["lm_tokens_per_s"], ".1f"),
            fmt(first["prompt_eval_tokens_per_s"], ".1f"), fmt(first["generation_tokens_per_s"], ".1f"), fmt(first["units_per_turn"]),
            fmt(first["compression_ratio"]), fmt(first["grounding_rejection_rate"]), fmt(first["fallback_window_rate"]),
            fmt(second["cache_hit_rate"]), fmt(second["seconds"], ".1f"),
            fmt(mi.get(label, {}).get("mi_bits")), fmt(mi.get(label, {}).get("bits_per_output_token"), ".4f"),
        )
    return t


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locomo", type=Path, required=True, help="LoCoMo-shaped JSON (read in place, never copied)")
    parser.add_argument("--conversation", default="conv-30", help="sample_id of the conversation to ingest")
    parser.add_argument("--max-turns", type=int, default=None, help="only the first N turns of it")
    parser.add_argument("--agent-sessions", type=int, default=15, help="sessions in the synthetic agent log")
    parser.add_argument("--compressor", action="append", dest="compressors", help="repeatable; default extractive and llama_cpp")
    parser.add_argument("--mi-sample", type=int, default=16, help="windows per MI batch (N)")
    parser.add_argument("--threads", type=int, default=None, help="LM threads (MEMORY_SERVICE_LLM_THREADS), the server's too")
    parser.add_argument("--llm-server", action="store_true", help="also the openai backend against a local llama_cpp.server")
    parser.add_argument("--concurrency", type=int, action="append", dest="concurrencies",
                        help="windows in flight for the openai backend (repeatable; default 1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compressors.json"))
    args = parser.parse_args()

    settings = Settings(llm_threads=args.threads) if args.threads else Settings()
    names = args.compressors or ["extractive", "llama_cpp"]
    backends = {n: create_compressor(n, **settings.compressor_options()) for n in names}
    servers = ExitStack()
    if args.llm_server:
        url = servers.enter_context(llama_cpp_server(threads=args.threads or 1))
        for c in args.concurrencies or [1]:
            options = {**settings.compressor_options(), "base_url": url, "model": "smollm2", "concurrency": c}
            backends[f"openai@c{c}"] = create_compressor("openai", **options)
    embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embedding_device)
    scorer = LlamaCppScorer(threads=settings.llm_threads) if args.mi_sample >= 2 else None

    samples = locomo.load(args.locomo)
    sample = next(s for s in samples if s["sample_id"] == args.conversation)
    conversation = locomo.sample_events(sample)[: args.max_turns]
    dev_turns = sum(len(locomo.sample_events(s)) for s in samples)
    agent = synthetic_agent_log(args.agent_sessions)

    with servers:
        results = [
            await bench_dataset(f"LoCoMo {args.conversation}", conversation, backends, embedder, settings, args.mi_sample, scorer)
        ]
        if agent:
            results.append(await bench_dataset("synthetic agent log", agent, backends, embedder, settings, args.mi_sample, scorer))
    estimate = {}
    for label, runs in results[0]["compressors"].items():
        rate = runs["first_ingest"]["turns_per_s"]
        estimate[label] = {"dev_turns": dev_turns, "estimated_seconds": round(dev_turns / rate, 1),
                           "from": f"{results[0]['turns']} turns of {args.conversation} at {rate} turns/s"}
    report = {
        "machine": {"cpus": __import__("os").cpu_count(), "llm_threads": settings.llm_threads},
        "command": " ".join(sys.argv),
        "window_size": settings.window_size,
        "window_overlap": settings.window_overlap,
        "datasets": results,
        "full_dev_split_ingest": estimate,
    }
    out = Console(width=200)
    for result in results:
        out.print(table(result))
    for label, e in estimate.items():
        out.print(f"full dev split ({e['dev_turns']} turns) with {label}: ~{e['estimated_seconds'] / 60:.1f} min ({e['from']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    out.print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
