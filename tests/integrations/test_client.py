"""MemoryClient / AsyncMemoryClient: every endpoint against the real service, errors, retries, API key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from api.inprocess import InProcessService
from memory_service.client import (
    AsyncMemoryClient,
    ConnectionFailed,
    InvalidRequest,
    MemoryClient,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
)
from memory_service.domain import EventIn, MemoryUnit
from memory_service.schemas import ContextResponse, IngestResponse
from memory_service.settings import Settings

FAST = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01)

EVENTS = [
    {"event_id": "c-1", "user_id": "ann", "role": "user", "speaker": "Ann",
     "content": "I adopted a cat named Miso yesterday.", "timestamp": "2024-03-14T10:00:00Z"},
    {"event_id": "c-2", "user_id": "ann", "role": "tool",
     "tool": {"name": "get_weather", "arguments": {"city": "Lisbon"}, "result": {"temp_c": 19}}},
]


def test_every_endpoint_round_trips_typed_models(settings: Settings, embedder: object) -> None:
    with InProcessService(settings, embedder=embedder) as local, local.client() as client:  # type: ignore[arg-type]
        ingested = client.ingest([*EVENTS, EventIn(user_id="ann", role="user", content="I live in Porto.")], wait=True)
        assert isinstance(ingested, IngestResponse) and ingested.accepted == 3
        assert ingested.event_ids[:2] == ["c-1", "c-2"] and ingested.event_ids[2]  # an id was given client-side

        answer = client.context("What is my cat called?", user_id="ann", budget_tokens=256, format="json")
        assert isinstance(answer, ContextResponse) and not answer.empty
        assert any("Miso" in u.text and u.source_event_ids == ["c-1"] for u in answer.units)

        memories = list(client.iter_memories(user_id="ann", page_size=1))
        assert len(memories) == 3 and all(isinstance(m, MemoryUnit) for m in memories)
        assert client.list_memories(user_id="ann", limit=2).next_offset == 2
        porto = next(m for m in memories if "Porto" in m.text)
        unit = client.get_memory(porto.id)
        assert unit == porto

        assert [e.event_id for e in client.iter_events(user_id="ann", page_size=2)][:2] == ["c-1", "c-2"]
        assert client.get_event("c-2").tool is not None
        assert [e.event_id for e in client.list_events(event_id_prefix="c-").events] == ["c-1", "c-2"]

        assert client.delete_memory(unit.id).deleted
        with pytest.raises(NotFound, match=f"memory {unit.id} not found"):
            client.get_memory(unit.id)

        miso = next(m for m in memories if m.source_event_ids == ["c-1"])
        erased = client.delete_event("c-1")
        assert erased.deleted and erased.units_deleted == [miso.id]
        with pytest.raises(NotFound):
            client.get_event("c-1")
        assert all("Miso" not in u.text for u in client.context("cat Miso", user_id="ann").units)

        weather = next(m for m in memories if m.source_event_ids == ["c-2"])
        history = client.memory_history(weather.id)
        assert history.id == weather.id and weather.id in [v.id for v in history.versions]
        with pytest.raises(NotFound):
            client.memory_history(porto.id)
        past = client.context("weather in Lisbon", user_id="ann", as_of=datetime(2000, 1, 1, tzinfo=UTC))
        assert past.empty  # nothing was valid yet
        jobs = client.jobs(dead_letters=5)
        assert jobs.backend == "in-process" and jobs.failed_total == 0

        health = client.health()
        assert health.status == "ok" and settings.sql_url.startswith(health.database)


async def test_async_client_and_server_messages(local: InProcessService) -> None:
    async with local.async_client() as client:
        await client.ingest([{"user_id": "bo", "role": "user", "speaker": "Bo", "content": "I play chess on Sundays."}], wait=True)
        answer = await client.context("When does Bo play chess?", user_id="bo")
        assert "chess" in answer.context
        assert [m async for m in client.iter_memories(user_id="bo")]
        assert (await client.health()).status == "ok"
        with pytest.raises(InvalidRequest) as info:
            await client.send(_raw_ingest({"events": [{"user_id": "bo", "role": "robot", "content": "x"}]}))
        assert info.value.status_code == 422 and "events.0.role" in info.value.message
        with pytest.raises(InvalidRequest, match="scope missing"):
            await client.list_memories()
        with pytest.raises(NotFound):
            await client.get_event("no-such-event")


def test_size_limit_is_payload_too_large(tmp_path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, max_event_bytes=10)
    with InProcessService(settings, embedder=embedder) as local, local.client() as client:
        with pytest.raises(PayloadTooLarge) as info:
            client.ingest([{"user_id": "a", "role": "user", "content": "far more than ten bytes"}])
        assert info.value.status_code == 413 and "bytes" in info.value.message


def _raw_ingest(body: dict) -> object:
    from memory_service.client import Call
    from memory_service.schemas import IngestResponse

    class Raw(Call[IngestResponse]):
        def json(self) -> object:
            return body

    return Raw("POST", "/v1/events", IngestResponse)


def _mock(responses: list[httpx.Response | Exception], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle)


OK_INGEST = httpx.Response(202, json={"accepted": 1, "event_ids": ["x"]})


def test_retries_429_and_503_with_the_same_event_ids() -> None:
    seen: list[httpx.Request] = []
    responses: list[httpx.Response | Exception] = [
        httpx.Response(429, json={"detail": "slow down"}),
        httpx.Response(503, json={"detail": "busy"}, headers={"retry-after": "0"}),
        OK_INGEST,
    ]
    with MemoryClient("http://svc", retry=FAST, transport=_mock(responses, seen)) as client:
        assert client.ingest([{"user_id": "a", "role": "user", "content": "hi"}]).accepted == 1
    ids = [json.loads(r.content)["events"][0]["event_id"] for r in seen]
    assert len(ids) == 3 and len(set(ids)) == 1


def test_gives_up_after_the_retries_with_the_servers_message() -> None:
    seen: list[httpx.Request] = []
    transport = _mock([httpx.Response(503, json={"detail": "draining"})] * 4, seen)
    with MemoryClient("http://svc", retry=FAST, transport=transport) as client, pytest.raises(ServiceUnavailable, match="draining") as info:
        client.health()
    assert info.value.status_code == 503 and len(seen) == 4
    seen.clear()
    transport = _mock([httpx.Response(429, text="too many")] * 4, seen)
    with MemoryClient("http://svc", retry=FAST, transport=transport) as client, pytest.raises(RateLimited, match="too many"):
        client.health()


def test_connection_errors_are_retried_then_raised() -> None:
    seen: list[httpx.Request] = []
    down = httpx.ConnectError("refused")
    with MemoryClient("http://svc", retry=FAST, transport=_mock([down, down, OK_INGEST], seen)) as client:
        assert client.ingest([{"user_id": "a", "role": "user", "content": "hi"}]).accepted == 1
    with MemoryClient("http://127.0.0.1:9", retry=FAST) as client, pytest.raises(ConnectionFailed):
        client.health()


def test_other_errors_are_not_retried() -> None:
    seen: list[httpx.Request] = []
    transport = _mock([httpx.Response(422, json={"detail": "bad"})], seen)
    with MemoryClient("http://svc", retry=FAST, transport=transport) as client, pytest.raises(InvalidRequest, match="bad"):
        client.health()
    assert len(seen) == 1


def test_retry_after_header_sets_the_delay() -> None:
    policy = RetryPolicy(max_delay=5)
    assert policy.delay(0, httpx.Response(429, headers={"retry-after": "2"})) == 2
    assert policy.delay(0, httpx.Response(429, headers={"retry-after": "60"})) == 5
    assert 0 <= policy.delay(3) <= policy.base_delay * 8


async def test_api_key_is_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    def health() -> httpx.Response:
        return httpx.Response(200, json={"status": "ok", "database": "sqlite", "units_indexed": 0})

    async with AsyncMemoryClient("http://svc", api_key="k1", transport=_mock([health()], seen)) as client:
        await client.health()
    assert seen[0].headers["authorization"] == "Bearer k1"
    monkeypatch.setenv("MEMORY_SERVICE_API_KEY", "from-env")
    monkeypatch.setenv("MEMORY_SERVICE_URL", "http://env-host:1234")
    with MemoryClient(transport=_mock([health()], seen)) as client:
        client.health()
    assert seen[1].headers["authorization"] == "Bearer from-env"
    assert seen[1].url.host == "env-host"


def test_timestamps_and_models_serialise_as_the_api_expects() -> None:
    seen: list[httpx.Request] = []
    with MemoryClient("http://svc", transport=_mock([OK_INGEST], seen)) as client:
        client.ingest([EventIn(event_id="e", user_id="a", role="user", content="hi", timestamp=datetime(2024, 1, 2, tzinfo=UTC))])
    body = json.loads(seen[0].content)
    assert body == {"events": [{"event_id": "e", "user_id": "a", "role": "user", "content": "hi", "timestamp": "2024-01-02T00:00:00Z"}], "wait": False}
