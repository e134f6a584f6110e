"""A native crash in the LM never takes the API down or loses an event.

A real `memory-service serve` runs the test-only backend `tests.crashing_lm` (its model
"process" segfaults, aborts or hangs on command) in its LM child process. Every event
is stored, the crashed windows come from extractive with the retry mark, the API keeps
answering, and the next window is compressed by a fresh child.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.server import running_server

pytestmark = pytest.mark.slow

BACKEND = "tests.crashing_lm:create_crashing_compressor"


def event(event_id: str, content: str) -> dict[str, str]:
    return {"event_id": event_id, "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann",
            "content": content}


def lm_state(client: httpx.Client) -> dict:  # type: ignore[type-arg]
    health = client.get("/healthz")
    assert health.status_code == 200
    (process,) = health.json()["lm_processes"]
    return process  # type: ignore[no-any-return]


def units_by_event(client: httpx.Client) -> dict[str, set[str]]:
    memories = client.get("/v1/memories", params={"user_id": "ann", "limit": 1000}).json()["memories"]
    out: dict[str, set[str]] = {}
    for memory in memories:
        if memory["level"] == 0:
            for event_id in memory["source_event_ids"]:
                out.setdefault(event_id, set()).add(memory["compressor"])
    return out


def retry_marks(data_dir: Path) -> dict[str, str | None]:
    with sqlite3.connect(data_dir / "memory.db") as db:
        return dict(db.execute("SELECT event_id, retry_compressor FROM events").fetchall())


def wait_compressed(client: httpx.Client, event_ids: set[str], timeout_s: float = 60) -> dict[str, set[str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        units = units_by_event(client)
        if event_ids <= set(units):
            return units
        time.sleep(0.2)
    raise TimeoutError(f"events {sorted(event_ids - set(units_by_event(client)))} never compressed")


def test_crashes_in_the_lm_process_lose_nothing_and_the_api_stays_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        "MEMORY_SERVICE_COMPRESSOR": BACKEND,
        "MEMORY_SERVICE_LM_RESTART_BACKOFF_S": "0.2",
        "MEMORY_SERVICE_LLM_TIMEOUT_S": "2",  # a hang is taken as one after 2 + 5 s
        "MEMORY_SERVICE_QUERY_ANALYSIS": "lm",
    }
    with running_server(data_dir, env) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        first = lm_state(client)
        assert first["state"] == "running" and first["starts"] == 1 and first["failures"] == 0

        ok = client.post("/v1/events", json={"events": [event("a1", "I adopted a grey cat named Miso."),
                                                        event("a2", "My sister Julia lives in Lisbon.")], "wait": True})
        assert ok.status_code == 202
        assert units_by_event(client) == {"a1": {"crashing_test_lm"}, "a2": {"crashing_test_lm"}}

        # A segfault while compressing, acknowledged before compression (no wait).
        crash = client.post("/v1/events", json={"events": [event("b1", "segfault-now"),
                                                           event("b2", "I started running on Tuesdays.")]})
        assert crash.status_code == 202
        assert client.get("/healthz").status_code == 200
        units = wait_compressed(client, {"b1", "b2"})
        assert units["b1"] == {"extractive"} and units["b2"] == {"extractive"}
        after_segfault = lm_state(client)
        assert after_segfault["failures"] == 1 and "SIGSEGV" in after_segfault["last_failure"]

        # The next window runs in a fresh child.
        time.sleep(0.5)
        fresh = client.post("/v1/events", json={"events": [event("c1", "I moved to Porto in May.")], "wait": True})
        assert fresh.status_code == 202
        assert units_by_event(client)["c1"] == {"crashing_test_lm"}
        restarted = lm_state(client)
        assert restarted["starts"] == 2 and restarted["pid"] != first["pid"]

        # An abort and a hang (killed past the deadline) cost their windows too, nothing else.
        for event_id, word, how in (("d1", "abort-now", "SIGABRT"), ("e1", "hang-now", "within")):
            time.sleep(0.5)
            response = client.post("/v1/events", json={"events": [event(event_id, word)], "wait": True})
            assert response.status_code == 202
            assert units_by_event(client)[event_id] == {"extractive"}
            assert how in lm_state(client)["last_failure"]

        # The query path answers without the LM while its analysis crashes the child.
        time.sleep(1.5)
        context = client.post("/v1/context", json={"query": "segfault-now: where does Julia live?", "user_id": "ann"})
        assert context.status_code == 200 and "Lisbon" in context.json()["context"]
        assert lm_state(client)["failures"] == 4

        metrics = client.get("/metrics").text
        assert f'memory_lm_process_failures_total{{lm="{BACKEND}"}} 4.0' in metrics

        stored = {e["event_id"] for e in client.get("/v1/events", params={"user_id": "ann"}).json()["events"]}
        assert stored == {"a1", "a2", "b1", "b2", "c1", "d1", "e1"}

    marks = retry_marks(data_dir)
    assert {e for e, mark in marks.items() if mark} == {"b1", "b2", "d1", "e1"}
    assert all(mark == "crashing_test_lm" for mark in marks.values() if mark)
