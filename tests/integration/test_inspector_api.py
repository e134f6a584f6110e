"""What the inspector reads through REST (GET /v1/scopes, the /v1/memories filters) and its handlers'
answers to bad input, in process (real SQLite and PostgreSQL, FAISS and the packaged embedder)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from memory_service.service import MemoryService
from memory_service.settings import Settings

EVENTS = [
    {"event_id": "a1", "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann", "content": "I adopted a cat named Miso.", "timestamp": "2024-03-14T10:00:00Z"},
    {"event_id": "a2", "user_id": "ann", "session_id": "s2", "role": "user", "speaker": "Ann", "content": "I moved to Porto in May.", "timestamp": "2024-05-02T10:00:00Z"},
    {"event_id": "b1", "agent_id": "helper", "role": "observation", "content": "The build server restarts nightly.", "timestamp": "2024-05-03T10:00:00Z"},
]


@pytest.fixture
async def client(settings: Settings, embedder) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    settings.api_key_cache_seconds = 0
    service = await MemoryService.open(settings, embedder=embedder)
    app = create_app(settings, service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        assert (await http.post("/v1/events", json={"events": EVENTS, "wait": True})).status_code == 202
        yield http
    await service.close()


async def test_scopes_and_memory_filters(client: httpx.AsyncClient) -> None:
    scopes = (await client.get("/v1/scopes")).json()["scopes"]
    assert [(s["user_id"], s["agent_id"], s["session_id"], s["events"]) for s in scopes] == [
        (None, "helper", None, 1), ("ann", None, "s1", 1), ("ann", None, "s2", 1)]
    assert all(s["units"] == s["valid_units"] >= 1 for s in scopes)

    def texts(answer: httpx.Response) -> list[str]:
        assert answer.status_code == 200, answer.text
        return [u["text"] for u in answer.json()["memories"]]

    everything = texts(await client.get("/v1/memories", params={"user_id": "ann"}))
    assert len(everything) == 2
    assert texts(await client.get("/v1/memories", params={"user_id": "ann", "contains": "MISO"})) == [t for t in everything if "Miso" in t]
    before_porto = texts(await client.get("/v1/memories", params={"user_id": "ann", "as_of": "2024-04-01T00:00:00Z"}))
    assert before_porto == [t for t in everything if "Miso" in t]
    kinds = {u["kind"] for u in (await client.get("/v1/memories", params={"user_id": "ann"})).json()["memories"]}
    other = next(k for k in ("fact", "event", "preference", "procedure", "summary") if k not in kinds)
    assert texts(await client.get("/v1/memories", params={"user_id": "ann", "kind": other})) == []
    assert texts(await client.get("/v1/memories", params={"user_id": "ann", "include_closed": True})) == everything
    bad = await client.get("/v1/memories", params={"user_id": "ann", "kind": "gossip"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("query.kind:")


async def test_inspector_refuses_bad_input_and_changes_nothing(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/scopes")).json()
    rest_budget = (await client.post("/v1/context", json={"query": "q", "user_id": "ann", "budget_tokens": 0})).json()["detail"]
    played = await client.post("/ui/playground", data={"query": "q", "user_id": "ann", "budget_tokens": "0"}, headers={"hx-request": "true"})
    assert rest_budget in played.text and 'class="error"' in played.text
    assert "scope missing: give user_id or agent_id" in (await client.get("/ui/units")).text
    assert "as_of:" in (await client.get("/ui/units", params={"user_id": "ann", "as_of": "yesterday"})).text
    assert "memory 987654 not found" in (await client.get("/ui/units/987654")).text
    # A change without htmx's header (another site's form, a plain link) is refused.
    assert (await client.delete("/ui/scopes", params={"user_id": "ann"})).status_code == 403
    unit_id = (await client.get("/v1/memories", params={"user_id": "ann"})).json()["memories"][0]["id"]
    assert (await client.delete(f"/ui/units/{unit_id}")).status_code == 403
    assert "memory 987654 not found" in (await client.delete("/ui/units/987654", headers={"hx-request": "true"})).text
    assert "scope missing" in (await client.delete("/ui/scopes", headers={"hx-request": "true"})).text
    assert (await client.get("/v1/scopes")).json() == before


async def test_inspector_login_checks_the_key(client: httpx.AsyncClient, make_api_key, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/ui/")).status_code == 200  # no key ever created: loopback-local mode
    key = await make_api_key(settings.sql_url, "acme")
    gone = await client.get("/ui/", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/login")
    refused = await client.post("/ui/login", data={"key": "ms_000000000000_wrong", "next": "/ui/"})
    assert refused.status_code == 401 and "unknown or revoked API key" in refused.text
    accepted = await client.post("/ui/login", data={"key": key, "next": "https://elsewhere.example/"}, follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/ui/"  # never off-site
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = await client.get("/ui/")
    assert page.status_code == 200 and '<b id="tenant">acme</b>' in page.text and "No" in page.text  # acme has nothing
