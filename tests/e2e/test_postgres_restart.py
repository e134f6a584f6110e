"""PostgreSQL goes away while the API serves: 503 with Retry-After (not 500, not a hang), the
service recovers by itself, and every event acknowledged with 202 is in the database.

Runs against a private cluster (`tests/pg_cluster.py`), never the shared server. The other
two faults (Redis stopped, a worker killed mid-job) are in `tests/e2e/test_worker.py`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.pg_cluster import ClusterUnavailable, PrivateCluster, private_cluster
from tests.server import running_server

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    try:
        with private_cluster() as running:
            yield running
    except ClusterUnavailable as exc:
        pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")


class Ingester(threading.Thread):
    """Posts small batches with fresh ids, one after another, and records what each got."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, timeout=15)
        self.stop_flag = threading.Event()
        self.acked: list[str] = []
        self.statuses: Counter[int | str] = Counter()
        self.unavailable: list[httpx.Response] = []
        self.batches = 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            ids = [f"pgr-{self.batches}-{i}" for i in range(5)]
            self.batches += 1
            events = [
                {"event_id": e, "user_id": f"u{self.batches % 3}", "role": "user", "speaker": "Ann",
                 "content": f"Ann logged step {e} of the migration plan."}
                for e in ids
            ]
            try:
                response = self.client.post("/v1/events", json={"events": events})
            except httpx.TimeoutException:
                self.statuses["timeout"] += 1
                continue
            except httpx.TransportError as exc:
                self.statuses[type(exc).__name__] += 1
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 202:
                self.acked.extend(response.json()["event_ids"])
            elif response.status_code == 503:
                self.unavailable.append(response)
                time.sleep(0.1)

    def wait_for(self, predicate, what: str, timeout_s: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline or not self.is_alive():
                raise TimeoutError(f"timed out waiting for {what}; statuses so far {dict(self.statuses)}")
            time.sleep(0.05)


async def stored(dsn: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1::text[])", ids)
    finally:
        await conn.close()


def test_postgres_restart_gives_503_then_recovers_without_losing_acknowledged_events(
    tmp_path: Path, cluster: PrivateCluster
) -> None:
    env = {"MEMORY_SERVICE_DATABASE_URL": cluster.url}
    with running_server(tmp_path / "data", env) as (url, _api):
        ingester = Ingester(url)
        ingester.start()
        try:
            ingester.wait_for(lambda: ingester.statuses[202] >= 3, "ingest to work")
            cluster.stop("immediate")
            ingester.wait_for(lambda: ingester.statuses[503] >= 3, "503s during the outage")
            health = httpx.get(f"{url}/healthz", timeout=15)
            assert health.status_code == 503
            acked_before_restart = ingester.statuses[202]
            cluster.start()
            ingester.wait_for(lambda: ingester.statuses[202] >= acked_before_restart + 3, "recovery after the restart")
        finally:
            ingester.stop_flag.set()
            ingester.join(timeout=30)
        assert httpx.get(f"{url}/healthz", timeout=15).status_code == 200

    # only 202 and 503: no 500, no hang, no dropped connection
    assert set(ingester.statuses) == {202, 503}, dict(ingester.statuses)
    first = ingester.unavailable[0]
    assert "database" in first.json()["detail"] and first.headers["retry-after"].isdigit()
    assert len(ingester.acked) == 5 * ingester.statuses[202]
    assert asyncio.run(stored(cluster.dsn, ingester.acked)) == len(ingester.acked), "an acknowledged event was lost"
