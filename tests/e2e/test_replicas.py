"""Two API replicas and two workers on one PostgreSQL and one Redis (issue 15, item 5).

Each replica has its own data dir (its own FAISS index) and follows the unit change log
in SQL, so what one replica or worker writes reaches the other replica's answers; the
queue and SQL hold all outstanding work, so killing a replica or a worker loses nothing.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from memory_service.domain import Scope
from tests.e2e.test_worker import mode_env, sql, wait_until
from tests.server import free_port, redis_server, start_server, start_worker, stopping, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")]

VISIBLE_WITHIN_S = 1.0


def ask(client: httpx.Client, query: str, user: str) -> str:
    answer = client.post("/v1/context", json={"query": query, "user_id": user, "budget_tokens": 256})
    assert answer.status_code == 200, answer.text
    return answer.json()["context"]


def seconds_until(predicate, timeout_s: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds from now until the start of the first call of `predicate()` that holds, polling as
    fast as the replica answers: how long the change took to reach it, not how long its
    answer took to compute (a query sees what SQL held when it began)."""
    started = time.monotonic()
    while True:
        asked = time.monotonic()
        if predicate():
            return asked - started
        if asked - started > timeout_s:
            raise TimeoutError(f"not visible after {timeout_s} s")
        time.sleep(0.01)


def batch(n: int, user: str) -> list[dict]:
    return [
        {"event_id": f"{user}-{n}-{i}", "user_id": user, "session_id": f"s{n}", "role": "user", "speaker": "Rui",
         "content": f"Rui filed ticket {n * 10 + i} about the {('billing', 'login', 'search', 'upload', 'export')[i]} page.",
         "timestamp": f"2024-06-0{1 + n % 9}T10:{n % 60:02d}:{i:02d}Z"}
        for i in range(5)
    ]


def test_two_replicas_and_two_workers_see_each_others_writes_and_lose_nothing(tmp_path: Path, pg_url: str) -> None:
    redis_port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    with redis_server(redis_port), stopping(processes):
        envs = {name: mode_env(pg_url, redis_port, tmp_path / name / "data") for name in ("a", "b", "w1", "w2")}
        (url_a, api_a, log_a), (url_b, api_b, log_b) = (start_server(tmp_path / n / "data", envs[n]) for n in "ab")
        workers = [start_worker(envs[n], tmp_path / f"{n}.log") for n in ("w1", "w2")]
        processes += [api_a, api_b, *workers]
        wait_healthy(url_a, api_a, log_a)
        wait_healthy(url_b, api_b, log_b)
        a, b = httpx.Client(base_url=url_a, timeout=60), httpx.Client(base_url=url_b, timeout=60)
        ask(b, "warm up the query embedder", "nobody")

        # 1. A unit written through A is in B's answers within a second of A's `wait` answer.
        fact = {"event_id": "ann-1", "user_id": "ann", "role": "user", "speaker": "Ann",
                "content": "I adopted a grey cat named Miso yesterday.", "timestamp": "2024-03-14T10:00:00Z"}
        assert a.post("/v1/events", json={"events": [fact], "wait": True}).status_code == 202
        seen_s = seconds_until(lambda: "Miso" in ask(b, "What is Ann's cat called?", "ann"))
        assert seen_s <= VISIBLE_WITHIN_S

        # 2. An erasure through A is gone from B as fast.
        erased = a.delete("/v1/scopes", params={"user_id": "ann"}).json()
        assert erased["erased"] and erased["units_deleted"] >= 1
        gone_s = seconds_until(lambda: "Miso" not in ask(b, "What is Ann's cat called?", "ann"))
        assert gone_s <= VISIBLE_WITHIN_S
        assert b.get("/v1/memories", params={"user_id": "ann"}).json()["memories"] == []
        assert b.get("/v1/events/ann-1").status_code == 404

        # 3. Ingest through both replicas; kill -9 a worker, then replica A, on the way.
        accepted: list[str] = []
        a_alive = True
        for n in range(30):
            client = a if n % 2 == 0 and a_alive else b
            events = batch(n, "rui")
            response = client.post("/v1/events", json={"events": events})
            assert response.status_code == 202, response.text
            accepted += [e["event_id"] for e in events]
            if n == 8:
                workers[0].send_signal(signal.SIGKILL)
            if n == 16:
                api_a.send_signal(signal.SIGKILL)
                a_alive = False
        assert workers[0].wait() == -signal.SIGKILL and api_a.wait() == -signal.SIGKILL
        wait_until(lambda: sql(pg_url, lambda s: s.count_uncompressed("local", accepted)) == 0,
                   timeout_s=150, what="every accepted event to be compressed", alive=[api_b, workers[1]])
        assert sql(pg_url, lambda s: s.count_events(Scope(user_id="rui"))) == len(accepted)
        units = sql(pg_url, lambda s: s.list_units(Scope(user_id="rui"), limit=10_000, include_invalid=True))
        firsts = [u.source_event_ids[0] for u in units if u.level == 0]
        assert len(firsts) == len(set(firsts)), "a unit was written twice"
        reachable = {e for u in units if u.valid_to is None for e in u.source_event_ids}
        assert set(accepted) <= reachable, "an accepted event is in no valid unit"
        # A fact sent to A before it died is in B's answers.
        assert "ticket 160" in ask(b, "What was ticket 160 about?", "rui")
        print(f"replica visibility: write {seen_s * 1000:.0f} ms, erasure {gone_s * 1000:.0f} ms")
