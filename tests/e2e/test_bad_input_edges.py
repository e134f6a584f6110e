"""Edge cases of input, on SQLite and PostgreSQL alike: Unicode, NUL characters, huge and deeply
nested metadata, invalid time zones, huge numbers. Each is either stored exactly or refused
with a 4xx naming the field, and a refused batch stores nothing.

(Duplicate event ids in one batch: `test_api_errors.py::test_duplicate_event_id_in_one_batch_is_422`.)
"""

from __future__ import annotations

import json

import httpx
import pytest

from api.app import create_app
from memory_service.service import MemoryService
from memory_service.settings import Settings

GOOD = {"user_id": "edge", "role": "user", "speaker": "Ann", "content": "Ann adopted a cat named Miso."}


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
async def client(tmp_path, embedder, db_url):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, max_event_bytes=4096)
    service = await MemoryService.open(settings, embedder=embedder)
    app = create_app(settings, service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.service = service  # type: ignore[attr-defined]
        yield client
    await service.close()


async def post_raw(client: httpx.AsyncClient, body: str) -> httpx.Response:
    """Posts JSON text as is (json.dumps with ensure_ascii keeps lone surrogates as \\ud800 escapes)."""
    return await client.post("/v1/events", content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        ({**GOOD, "content": "before\x00after"}, 422, "content: contains a NUL character"),
        ({**GOOD, "speaker": "A\x00nn"}, 422, "speaker: contains a NUL"),
        ({**GOOD, "event_id": "id\x00"}, 422, "event_id: contains a NUL"),
        ({**GOOD, "metadata": {"note": ["ok", "bad\x00"]}}, 422, "metadata.note[1]: contains a NUL"),
        ({**GOOD, "metadata": {"k\x00": 1}}, 422, "metadata key: contains a NUL"),
        ({**GOOD, "role": "tool", "tool": {"name": "grep", "arguments": {"q": "\x00"}}}, 422, "tool.arguments.q"),
        ({**GOOD, "content": "broken \ud800 surrogate"}, 422, "content: contains a lone surrogate"),
        ({**GOOD, "metadata": nested(40)}, 422, "nested deeper than 32 levels"),
        ({**GOOD, "metadata": {"blob": "x" * 5000}}, 413, "events[1].metadata and tool: 5012 bytes, the limit is 4096"),
        ({**GOOD, "metadata": {str(i): i for i in range(1000)}}, 413, "the limit is 4096"),
        ({**GOOD, "timestamp": "2024-01-01T00:00:00+25:00"}, 422, "events.1.timestamp"),
        ({**GOOD, "timestamp": "2024-01-01T00:00:00 Mars/Olympus"}, 422, "events.1.timestamp"),
        ({**GOOD, "timestamp": "0001-01-01T00:00:00+14:00"}, 422, "out of range once converted to UTC"),
        ({**GOOD, "timestamp": "9999-12-31T23:59:59-12:00"}, 422, "out of range once converted to UTC"),
    ],
)
async def test_unstorable_input_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, event: dict, status: int, message: str
) -> None:
    response = await post_raw(client, json.dumps({"events": [GOOD, event], "wait": True}))
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert await client.service.store.count_events() == 0  # type: ignore[attr-defined]


async def test_unicode_edge_cases_round_trip_exactly(client: httpx.AsyncClient) -> None:
    texts = {
        "zwj": "Family emoji 👩‍👩‍👧‍👦 and flags 🇯🇵🇧🇷",
        "rtl": "Override \u202eevil\u202c and Hebrew שלום and Arabic مرحبا",
        "combining": "Cafe\u0301 vs Café, Zalgo Z\u0336\u0353a\u0337l\u0338go",
        "bom": "\ufeffstarts with a BOM and has \u200bzero width\u200b spaces",
        "cjk": "東京で猫のミソを飼い始めた",
        "astral": "Math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and old italic 𐌀𐌁",
    }
    events = [
        {**GOOD, "event_id": f"uni-{name}", "content": text, "speaker": text[:8], "metadata": {text[:5]: text}}
        for name, text in texts.items()
    ]
    response = await client.post("/v1/events", json={"events": events, "wait": True})
    assert response.status_code == 202, response.text
    for name, text in texts.items():
        stored = (await client.get(f"/v1/events/uni-{name}")).json()
        assert stored["content"] == text and stored["speaker"] == text[:8] and stored["metadata"] == {text[:5]: text}
    answer = await client.post("/v1/context", json={"query": "猫のミソ", "user_id": "edge"})
    assert answer.status_code == 200


async def test_big_numbers_and_deep_but_allowed_metadata_are_kept(client: httpx.AsyncClient) -> None:
    metadata = {"big": 10**30, "negative": -(2**70), "float": 1e308, "deep": nested(30)}
    response = await client.post("/v1/events", json={"events": [{**GOOD, "event_id": "num", "metadata": metadata}]})
    assert response.status_code == 202, response.text
    assert (await client.get("/v1/events/num")).json()["metadata"] == metadata


async def test_nul_in_urls_is_422_on_every_backend(client: httpx.AsyncClient) -> None:
    listing = await client.get("/v1/events", params={"user_id": "edge\x00"})
    assert listing.status_code == 422 and "NUL" in listing.json()["detail"]
    assert (await client.get("/v1/events/a%00b")).status_code == 422
    assert (await client.get("/v1/memories/12", params={"x": "\x00"})).status_code == 422
