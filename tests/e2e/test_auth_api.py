"""API keys over REST: tenants come from keys only, both header styles, 401s, 429 with Retry-After,
and no serving off loopback without keys. Real SQLite, FAISS, embedder; real Redis for the shared limiter."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request

from api.app import Tenant, create_app
from api.auth import BindingRefused
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.api_keys import ApiKeyTable
from tests.conftest import REDIS_URL

EVENT = {"event_id": "e1", "user_id": "ann", "role": "user", "speaker": "Ann", "content": "Ann adopted a cat named Miso."}


@pytest.fixture
async def service(tmp_path: Path, embedder) -> AsyncIterator[MemoryService]:  # type: ignore[no-untyped-def]
    service = await MemoryService.open(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    yield service
    await service.close()


def client_for(app, key: str | None = None, header: str = "authorization") -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    headers = {}
    if key is not None:
        headers = {"authorization": f"Bearer {key}"} if header == "authorization" else {"x-api-key": key}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)


def app_for(service: MemoryService, **overrides: object):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=service.settings.data_dir, api_key_cache_seconds=0, **overrides)  # type: ignore[arg-type]
    app = create_app(settings, service=service)

    @app.get("/test/whoami")
    async def whoami(request: Request, tenant: Tenant) -> dict[str, str | None]:
        return {"tenant": tenant, "state_tenant": request.state.tenant, "key_id": request.state.api_key_id}

    return app


async def ingest(client: httpx.AsyncClient, **event: object) -> httpx.Response:
    return await client.post("/v1/events", json={"events": [{**EVENT, **event}], "wait": True})


async def test_no_keys_serves_the_local_tenant_until_the_first_key_exists(service: MemoryService, make_api_key) -> None:  # type: ignore[no-untyped-def]
    app = app_for(service)
    async with client_for(app) as anonymous:
        assert (await ingest(anonymous)).status_code == 202
        assert (await anonymous.get("/test/whoami")).json() == {"tenant": "local", "state_tenant": "local", "key_id": None}
        key = await make_api_key(service.settings.sql_url, "acme")
        response = await anonymous.get("/v1/events", params={"user_id": "ann"})
        assert response.status_code == 401 and "missing API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
    async with client_for(app, key) as acme:
        assert (await acme.get("/test/whoami")).json()["tenant"] == "acme"
        assert (await acme.get("/v1/events", params={"user_id": "ann"})).json()["events"] == []  # not the local tenant's
        # Nothing in a body picks the tenant: a `tenant` field is rejected, the event lands in acme.
        assert (await ingest(acme, tenant="local")).status_code == 422
        assert (await ingest(acme, event_id="e2")).status_code == 202
        assert [e["tenant"] for e in (await acme.get("/v1/events", params={"user_id": "ann"})).json()["events"]] == ["acme"]
    assert [e.event_id for e in await service.list_events(service_scope("local"))] == ["e1"]


def service_scope(tenant: str):  # type: ignore[no-untyped-def]
    from memory_service.domain import Scope

    return Scope(tenant=tenant, user_id="ann")


async def test_both_header_styles_unknown_malformed_and_revoked_keys(service: MemoryService, make_api_key) -> None:  # type: ignore[no-untyped-def]
    app = app_for(service)
    key = await make_api_key(service.settings.sql_url, "acme")
    key_id = key.split("_")[1]
    for header in ("authorization", "x-api-key"):
        async with client_for(app, key, header) as client:
            assert (await client.get("/test/whoami")).json() == {"tenant": "acme", "state_tenant": "acme", "key_id": key_id}
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    cases = {
        "unknown or revoked API key": {"authorization": f"Bearer {forged}"},
        "unknown or revoked API key ": {"x-api-key": "ms_000000000000_" + "A" * 43},
        "unknown or revoked API key  ": {"x-api-key": "not-a-key"},
        "must be `Bearer <API key>`": {"authorization": f"Basic {key}"},
        "different keys": {"authorization": f"Bearer {key}", "x-api-key": forged},
    }
    async with client_for(app) as client:
        for message, headers in cases.items():
            response = await client.get("/v1/events", params={"user_id": "ann"}, headers=headers)
            assert response.status_code == 401 and message.strip() in response.json()["detail"], (headers, response.text)
        assert await ApiKeyTable(service.store).revoke(key_id, "acme")
        response = await client.get("/v1/events", params={"user_id": "ann"}, headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 401  # revoked: at once with a 0 s key cache
        # Revoking the last key does not reopen the keyless local mode.
        assert (await client.get("/v1/events", params={"user_id": "ann"})).status_code == 401


async def test_two_tenants_never_see_each_other(service: MemoryService, make_api_key) -> None:  # type: ignore[no-untyped-def]
    app = app_for(service)
    key_a = await make_api_key(service.settings.sql_url, "tenant-a")
    key_b = await make_api_key(service.settings.sql_url, "tenant-b")
    async with client_for(app, key_a) as a, client_for(app, key_b, "x-api-key") as b:
        # Same event id, same user, different content: each tenant keeps its own.
        assert (await ingest(a, content="Ann adopted a cat named Miso.")).status_code == 202
        assert (await ingest(b, content="Ann bought a sailing boat called Petrel.")).status_code == 202
        for client, own, other in ((a, "Miso", "Petrel"), (b, "Petrel", "Miso")):
            events = (await client.get("/v1/events", params={"user_id": "ann"})).json()["events"]
            assert [own in e["content"] for e in events] == [True]
            assert (await client.get("/v1/events/e1")).json()["content"].count(own) == 1
            context = (await client.post("/v1/context", json={"query": "Miso cat Petrel boat", "user_id": "ann"})).json()
            assert own in context["context"] and other not in context["context"]
            memories = (await client.get("/v1/memories", params={"user_id": "ann"})).json()["memories"]
            assert memories and all(own in m["text"] for m in memories)
        a_unit = (await a.get("/v1/memories", params={"user_id": "ann"})).json()["memories"][0]["id"]
        assert (await b.get(f"/v1/memories/{a_unit}")).status_code == 404
        assert (await b.delete(f"/v1/memories/{a_unit}")).status_code == 404
        erased = (await b.delete("/v1/scopes", params={"user_id": "ann"})).json()
        assert erased["events_deleted"] == 1 and erased["erased"] is True
        assert (await b.delete("/v1/scopes", params={"user_id": "ann"})).json()["erased"] is False  # idempotent
        assert (await a.get(f"/v1/memories/{a_unit}")).status_code == 200
        context = (await a.post("/v1/context", json={"query": "Miso cat", "user_id": "ann"})).json()
        assert "Miso" in context["context"]
        assert (await b.post("/v1/context", json={"query": "Miso cat Petrel boat", "user_id": "ann"})).json()["empty"]


@pytest.mark.parametrize("backend", ["in-process", "redis"])
async def test_rate_limit_answers_429_with_retry_after_per_key(service: MemoryService, make_api_key, backend: str) -> None:  # type: ignore[no-untyped-def]
    overrides: dict[str, object] = {"rate_limit_per_minute": 1000}
    if backend == "redis":
        overrides.update(redis_url=REDIS_URL, queue_name=f"test-ratelimit-{uuid.uuid4().hex[:8]}")
    app = app_for(service, **overrides)
    limited = await make_api_key(service.settings.sql_url, "acme", rate_limit_per_minute=3)
    other = await make_api_key(service.settings.sql_url, "acme")
    async with client_for(app, limited) as client, client_for(app, other) as other_client:
        statuses = [(await client.get("/v1/events", params={"user_id": "ann"})).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = await client.get("/v1/events", params={"user_id": "ann"})
        assert response.status_code == 429 and "3 requests per minute" in response.json()["detail"]
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert (await other_client.get("/v1/events", params={"user_id": "ann"})).status_code == 200  # per key
        assert (await client.get("/healthz")).status_code == 200  # health checks are not limited
    if backend == "redis":
        await app.state.guard.limiter.redis.delete(*[k async for k in app.state.guard.limiter.redis.scan_iter(match=f"{overrides['queue_name']}:*")])
        await app.state.guard.close()


async def test_require_api_keys_refuses_keyless_requests_on_loopback_too(service: MemoryService) -> None:
    async with client_for(app_for(service, require_api_keys=True)) as anonymous:
        response = await anonymous.get("/v1/events", params={"user_id": "ann"})
        assert response.status_code == 401 and "missing API key" in response.json()["detail"]


async def test_an_app_for_a_public_address_refuses_to_start_without_keys(service: MemoryService, make_api_key) -> None:  # type: ignore[no-untyped-def]
    app = app_for(service, host="0.0.0.0")
    with pytest.raises(BindingRefused, match="refusing to listen on 0.0.0.0 without API keys"):
        async with app.router.lifespan_context(app):
            pass
    key = await make_api_key(service.settings.sql_url, "acme")
    async with app.router.lifespan_context(app), client_for(app) as anonymous, client_for(app, key) as client:
        assert (await anonymous.get("/v1/events", params={"user_id": "ann"})).status_code == 401
        assert (await client.get("/v1/events", params={"user_id": "ann"})).status_code == 200


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    env = {**os.environ, "MEMORY_SERVICE_DATA_DIR": str(tmp_path / "data")}
    cli = [sys.executable, "-m", "memory_service.cli"]
    result = subprocess.run([*cli, "serve", "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in result.stderr
    assert "memory-service keys create --tenant" in result.stderr
