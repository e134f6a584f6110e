"""Bad input over REST: a clear 4xx naming the field, and nothing stored from a rejected batch."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from memory_service.service import MemoryService
from memory_service.settings import Settings

GOOD = {"user_id": "u1", "role": "user", "speaker": "Ann", "content": "Ann adopted a cat named Miso."}


@pytest.fixture
async def client(tmp_path: Path, embedder):
    settings = Settings(data_dir=tmp_path, max_event_bytes=1024, max_batch_events=5)
    service = await MemoryService.open(settings, embedder=embedder)
    app = create_app(settings, service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.service = service  # type: ignore[attr-defined]
        yield client
    await service.close()


async def stored_events(client: httpx.AsyncClient) -> int:
    return await client.service.store.count_events()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"role": "user", "content": "hi there"}, "scope missing"),
        ({**GOOD, "role": "robot"}, "events.1.role"),
        ({**GOOD, "timestamp": "yesterday-ish"}, "events.1.timestamp"),
        ({**GOOD, "timestamp": "2023-13-45T00:00:00Z"}, "events.1.timestamp"),
        ({**GOOD, "content": "   "}, "content is empty"),
        ({**GOOD, "colour": "blue"}, "events.1.colour"),
        ({**GOOD, "user_id": ""}, "events.1.user_id"),
    ],
)
async def test_invalid_event_rejects_the_whole_batch(client: httpx.AsyncClient, event: dict, field: str) -> None:
    response = await client.post("/v1/events", json={"events": [GOOD, event], "wait": True})
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert await stored_events(client) == 0


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", content=b'{"events": [', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


async def test_empty_batch_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"events": []})
    assert response.status_code == 422 and "events" in response.json()["detail"]


async def test_oversize_content_is_413(client: httpx.AsyncClient) -> None:
    big = {**GOOD, "content": "x" * 1025}
    response = await client.post("/v1/events", json={"events": [GOOD, big]})
    assert response.status_code == 413
    assert "events[1].content" in response.json()["detail"] and "1024" in response.json()["detail"]
    assert await stored_events(client) == 0


async def test_oversize_batch_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"events": [GOOD] * 6})
    assert response.status_code == 413 and "limit is 5" in response.json()["detail"]
    assert await stored_events(client) == 0


async def test_duplicate_event_id_in_one_batch_is_422(client: httpx.AsyncClient) -> None:
    events = [{**GOOD, "event_id": "same"}, {**GOOD, "event_id": "same", "content": "other"}]
    response = await client.post("/v1/events", json={"events": events})
    assert response.status_code == 422 and "events[1].event_id" in response.json()["detail"]
    assert await stored_events(client) == 0


async def test_rejected_batch_keeps_what_was_stored_before(client: httpx.AsyncClient) -> None:
    ok = await client.post("/v1/events", json={"events": [GOOD], "wait": True})
    assert ok.status_code == 202
    bad = await client.post("/v1/events", json={"events": [GOOD, {**GOOD, "role": "robot"}]})
    assert bad.status_code == 422
    assert await stored_events(client) == 1
    context = await client.post("/v1/context", json={"query": "What is the cat called?", "user_id": "u1"})
    assert "Miso" in context.json()["context"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "cat"}, "scope missing"),
        ({"query": "", "user_id": "u1"}, "query"),
        ({"query": "cat", "user_id": "u1", "budget_tokens": 0}, "budget_tokens"),
        ({"query": "cat", "user_id": "u1", "format": "xml"}, "format"),
    ],
)
async def test_bad_context_requests(client: httpx.AsyncClient, body: dict, field: str) -> None:
    response = await client.post("/v1/context", json=body)
    assert response.status_code == 422 and field in response.json()["detail"]


async def test_scope_required_and_404s(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/memories")).status_code == 422
    assert (await client.get("/v1/events")).status_code == 422
    assert (await client.get("/v1/memories/12345")).status_code == 404
    assert (await client.delete("/v1/memories/12345")).status_code == 404
    assert (await client.get("/v1/memories/not-a-number")).status_code == 422
    assert (await client.get("/v1/memories", params={"user_id": "u1", "limit": 0})).status_code == 422
