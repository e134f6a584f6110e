"""Redis mode end to end: an API process that only stores and enqueues, `memory-service worker`
processes that compress and consolidate, on PostgreSQL and a real Redis server.

Each test runs its own redis-server on a free port, so stopping it harms nothing else.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from memory_service.domain import Scope
from stores.sql.store import SqlStore
from tests.server import free_port, redis_server, running_server, start_worker, stop, stopping

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")]


def wait_until(predicate, timeout_s: float = 180, every_s: float = 0.5, what: str = "condition", alive=()):  # type: ignore[no-untyped-def]
    """Poll `predicate`; fail at once if one of the `alive` processes exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        for process in alive:
            if process.poll() is not None:
                raise RuntimeError(f"a process exited with {process.returncode} while waiting for {what}")
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every_s)


def sql(url: str, query):  # type: ignore[no-untyped-def]
    async def _run():  # type: ignore[no-untyped-def]
        store = await SqlStore.open(url, run_migrations=False)
        try:
            return await query(store)
        finally:
            await store.close()

    return asyncio.run(_run())


def mode_env(pg: str, redis_port: int, data_dir: Path) -> dict[str, str]:
    return {
        "MEMORY_SERVICE_DATABASE_URL": pg,
        "MEMORY_SERVICE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MEMORY_SERVICE_DATA_DIR": str(data_dir),
        "MEMORY_SERVICE_JOB_HEARTBEAT_S": "2",
        "MEMORY_SERVICE_RECONCILE_SECONDS": "1",
    }


def agent_log(n: int, user: str = "dev", session: str = "s1") -> list[dict]:
    tools = ["run_tests", "read_file", "grep", "deploy"]
    events = []
    for i in range(n):
        if i % 4 == 3:
            events.append({
                "event_id": f"{user}-{i}", "user_id": user, "session_id": session, "role": "tool",
                "timestamp": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "tool": {"name": tools[i % 4], "arguments": {"target": f"module_{i}"}, "result": f"finished step {i} with code {i % 7}"},
            })
        else:
            events.append({
                "event_id": f"{user}-{i}", "user_id": user, "session_id": session, "role": "user", "speaker": "Dana",
                "content": f"Dana asked to refactor module {i} so that the parser handles case number {i}.",
                "timestamp": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            })
    return events


def test_worker_compresses_and_consolidates_and_survives_kill_9(tmp_path: Path, pg_url: str) -> None:
    redis_port = free_port()
    env = mode_env(pg_url, redis_port, tmp_path / "data")
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    with redis_server(redis_port), running_server(tmp_path / "data", env) as (url, _api), stopping(workers):
        client = httpx.Client(base_url=url, timeout=60)
        assert client.get("/v1/jobs").json()["backend"] == "redis"

        # Phase 1: the worker compresses and consolidates what the API only stored.
        worker = start_worker(env, log)
        workers.append(worker)
        facts = [
            {"event_id": "f1", "user_id": "cara", "session_id": "a", "role": "user", "speaker": "Cara",
             "content": "I live in Boston with my two cats.", "timestamp": "2023-01-10T10:00:00Z"},
            {"event_id": "f2", "user_id": "cara", "session_id": "b", "role": "user", "speaker": "Cara",
             "content": "I moved to Denver last week, Boston is behind me now.", "timestamp": "2023-05-10T10:00:00Z"},
        ]
        assert client.post("/v1/events", json={"events": facts}).status_code == 202
        wait_until(
            lambda: any(
                v["valid_to"] for m in client.get("/v1/memories", params={"user_id": "cara"}).json()["memories"]
                for v in client.get(f"/v1/memories/{m['id']}/history").json()["versions"]
            ),
            what="the Boston fact to be superseded",
            alive=[worker],
        )
        answer = client.post("/v1/context", json={"query": "Where does Cara live?", "user_id": "cara"}).json()
        assert "Denver" in answer["context"] and "Boston with" not in answer["context"]
        before = client.post(
            "/v1/context", json={"query": "Where does Cara live?", "user_id": "cara", "as_of": "2023-02-01T00:00:00Z"}
        ).json()
        assert "Boston" in before["context"] and "Denver" not in before["context"]

        # Phase 2: kill -9 the worker in the middle of a big compression job.
        events = agent_log(900)
        started = time.perf_counter()
        assert client.post("/v1/events", json={"events": events}).status_code == 202
        post_s = time.perf_counter() - started
        scope = Scope(user_id="dev", session_id="s1")
        wait_until(
            lambda: client.get("/v1/jobs").json()["running"] >= 1, every_s=0.05, what="the job to start", alive=[worker]
        )
        time.sleep(1.0)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        left = sql(pg_url, lambda s: s.count_uncompressed("local", [e["event_id"] for e in events]))
        assert left > 0, "the job finished before the kill; the test proves nothing"

        replacement = start_worker(env, log)
        workers.append(replacement)
        try:
            wait_until(
                lambda: sql(pg_url, lambda s: s.count_uncompressed("local", [e["event_id"] for e in events])) == 0,
                what="the redelivered job to finish",
                alive=[replacement],
            )
            units = sql(pg_url, lambda s: s.list_units(scope, limit=10_000, include_invalid=True))
            level0 = [u for u in units if u.level == 0]
            cited = [e for u in level0 for e in u.source_event_ids]
            first_citations = [u.source_event_ids[0] for u in level0]
            assert len(first_citations) == len(set(first_citations)), "a unit was written twice"
            valid = {e for u in units if u.valid_to is None for e in u.source_event_ids}
            assert {e["event_id"] for e in events} <= valid, "an event is not reachable through any unit"
            assert len(set(cited)) == len(events)
            jobs = client.get("/v1/jobs").json()
            assert jobs["workers"] >= 1
        finally:
            stop(replacement)
        print(f"POST of 900 events in Redis mode: {post_s * 1000:.0f} ms; {left} events left at kill time")


def test_events_are_kept_while_redis_is_down_and_processed_when_it_returns(tmp_path: Path, pg_url: str) -> None:
    redis_port = free_port()
    env = mode_env(pg_url, redis_port, tmp_path / "data")
    redis = redis_server(redis_port)
    redis.__enter__()
    try:
        with running_server(tmp_path / "data", env) as (url, _api):
            worker = start_worker(env, tmp_path / "worker.log")
            try:
                client = httpx.Client(base_url=url, timeout=60)
                redis.__exit__(None, None, None)  # Redis goes away
                events = agent_log(20, user="offline")
                response = client.post("/v1/events", json={"events": events})
                assert response.status_code == 202
                stored = client.get("/v1/events", params={"user_id": "offline", "limit": 100}).json()["events"]
                assert len(stored) == 20
                assert client.get("/v1/jobs").status_code == 503
                time.sleep(2)
                assert sql(pg_url, lambda s: s.count_uncompressed("local", [e["event_id"] for e in events])) == 20

                with redis_server(redis_port):  # back, empty: nothing was queued in it
                    wait_until(
                        lambda: sql(pg_url, lambda s: s.count_uncompressed("local", [e["event_id"] for e in events])) == 0,
                        what="compression after Redis returned",
                        alive=[worker],
                    )
                    memories = client.get("/v1/memories", params={"user_id": "offline", "limit": 100}).json()["memories"]
                    assert {e for m in memories for e in m["source_event_ids"]} == {e["event_id"] for e in events}
                    assert worker.poll() is None, "the worker died while Redis was down"
            finally:
                stop(worker)
    finally:
        redis.__exit__(None, None, None)
