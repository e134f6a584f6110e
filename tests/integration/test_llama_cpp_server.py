"""The `openai` backend against llama-cpp-python's own OpenAI-compatible server (`llama_cpp.server`,
what the compose `llm` service runs) serving the packaged SmolLM2 GGUF over real HTTP, with
several windows in flight. The server counts the chat completions it had in flight at once
(`tests/llama_server.py`), so overlap is asserted on what the server saw, not on timing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compressors.backends.openai_compat import OpenAICompressor
from compressors.grounding import ground
from compressors.lm.compressor import window_names
from memory_service.domain import CompressionWindow, Event, EventIn, Scope
from memory_service.ingest.pipeline import CompressionStats
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.retry import count_marked
from tests.llama_server import in_flight, llama_cpp_server
from tests.server import free_port

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)
# One short, plain turn per window: SmolLM2 restates each in ~4 s on one thread, and
# 96 tokens hold one complete unit (the answer is salvaged up to the last complete one).
TURNS = [
    ("Priya", "I moved the staging database to port 5433 today."),
    ("Aiko", "I adopted a cat named Miso yesterday."),
    ("Lena", "Our team meeting moved to Thursday at 10:00."),
]
MAX_TOKENS = 128  # room for one complete unit of a 1-event window (SmolLM2 writes long ones)


@pytest.fixture
def server() -> Iterator[str]:
    """A fresh server per test, so its in-flight count is this test's alone (it starts in ~1 s)."""
    with llama_cpp_server(threads=1) as url:
        yield url


def turn_windows(prefix: str, turns: list[tuple[str, str]]) -> list[CompressionWindow]:
    return [
        CompressionWindow(events=[Event(tenant="t", event_id=f"{prefix}/{i}", user_id="u", role="user", speaker=who,
                                        content=text, timestamp=T0 + timedelta(hours=i), received_at=T0)])
        for i, (who, text) in enumerate(turns)
    ]


async def ingest_turns(service: MemoryService, prefix: str, user_id: str) -> CompressionStats:
    """TURNS as events of `user_id` (ids `prefix/0`, ...), then compress them all."""
    events = [EventIn(event_id=f"{prefix}/{i}", user_id=user_id, role="user", speaker=who, content=text,
                      timestamp=T0 + timedelta(hours=i)) for i, (who, text) in enumerate(TURNS)]
    await service.ingest(events)
    return await service.compress_pending()


def test_windows_sent_one_at_a_time_with_concurrency_1(server: str) -> None:
    """The control: the count is 1 when the client does not overlap (so the other test's count is evidence)."""
    windows = turn_windows("one", TURNS[:2])
    client = OpenAICompressor(model="smollm2", base_url=server, timeout_s=300, max_tokens=MAX_TOKENS, concurrency=1)
    results = client.compress_windows(windows)
    assert in_flight(server)["max"] == 1
    # llama_cpp.server refuses json_schema (its validation error is a 500 naming response_format)
    # and takes json_object with a schema, which it turns into a grammar
    assert client.mode == "json_object_schema"
    for window, result in zip(windows, results, strict=True):
        assert result.fallback is None
        assert {i for u in result.units for i in u.draft.source_event_ids} == {window.events[0].event_id}


async def test_service_compresses_windows_concurrently_through_llama_cpp_server(
    server: str, tmp_path: Path, sqlite_url: str, embedder
) -> None:  # type: ignore[no-untyped-def]
    """The worker's path: Settings -> openai backend -> pipeline round -> 3 requests in flight -> grounded units in SQL."""
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, compressor="openai", llm_base_url=server, llm_model="smollm2",
        llm_concurrency=3, llm_max_tokens=MAX_TOKENS, llm_timeout_s=300, window_size=1, window_overlap=0,
    )
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        stats = await ingest_turns(service, "conc", "ann")
        seen = in_flight(server)
        assert seen["max"] >= 2, seen  # the server had several of this round's windows at once
        assert stats.windows == 3 and stats.fallbacks == 0 and stats.lm_calls >= 3
        units = await service.list_memories(Scope(user_id="ann"))
        # every event restated by a unit of its own window (results matched to their windows, in order;
        # an event may have several); the grounding check below catches a unit matched to another window
        assert sorted({i for u in units for i in u.source_event_ids}) == ["conc/0", "conc/1", "conc/2"]
        lm_units = [u for u in units if u.compressor == "openai"]
        assert lm_units, [(u.compressor, u.text) for u in units]
        stored = {e.event_id: e for e in await service.list_events(Scope(user_id="ann"))}
        for unit in lm_units:  # what was stored from the LM passes grounding against its cited events
            cited = [stored[i] for i in unit.source_event_ids]
            verdict = ground(unit, cited, window_names(CompressionWindow(events=cited)))
            assert verdict.draft is not None, (unit.text, verdict.problems)
    finally:
        await service.close()


async def test_unreachable_llm_with_concurrency_stores_everything_extractive_and_marked(
    tmp_path: Path, sqlite_url: str, embedder
) -> None:  # type: ignore[no-untyped-def]
    """A bad LLM URL (connection refused): every window falls back, nothing is lost, all marked for retry."""
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, compressor="openai",
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_concurrency=4, window_size=1, window_overlap=0,
    )
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        stats = await ingest_turns(service, "down", "bob")
        assert stats.windows == 3 and stats.fallbacks == 3
        units = await service.list_memories(Scope(user_id="bob"))
        assert {u.compressor for u in units} == {"extractive"}
        assert sorted(i for u in units for i in u.source_event_ids) == ["down/0", "down/1", "down/2"]
        assert await count_marked(service.store, "openai") == 3
    finally:
        await service.close()
