"""The MCP server through the SDK's own client: streamable HTTP against a real `memory-service serve`
(two tenants, by key) and stdio against a real `memory-service mcp` subprocess. Real SQLite, FAISS
and the packaged embedder. Every tool, the resources, the key checks, and bad input (a tool
error with REST's message, nothing stored)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextResourceContents

from memory_service.auth import create_key
from memory_service.settings import Settings
from stores.sql.store import SqlStore
from tests.server import running_server

TOOLS = {"remember", "get_context", "search_memories", "forget", "memory_history"}
CAT = "I adopted a cat named Miso yesterday."


async def make_key(data_dir: Path, tenant: str) -> str:
    store = await SqlStore.open(Settings(data_dir=data_dir).sql_url)
    try:
        return (await create_key(store, tenant)).key
    finally:
        await store.close()


@pytest.fixture(scope="module")
def keyed_data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("mcp") / "data"
    data_dir.mkdir()
    keys = {t: asyncio.run(make_key(data_dir, t)) for t in ("tenant-a", "tenant-b")}
    return data_dir, keys


@pytest.fixture(scope="module")
def server(keyed_data_dir: tuple[Path, dict[str, str]]) -> Iterator[str]:
    data_dir, _ = keyed_data_dir
    with running_server(data_dir, env={"MEMORY_SERVICE_API_KEY_CACHE_SECONDS": "0"}) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def keys(keyed_data_dir: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return keyed_data_dir[1]


@asynccontextmanager
async def mcp_http(url: str, key: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def rest(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60)


def data(result: CallToolResult) -> Any:
    assert not result.isError, result.content
    structured = result.structuredContent
    return structured.get("result", structured) if structured is not None else json.loads(result.content[0].text)


def error_text(result: CallToolResult) -> str:
    assert result.isError
    return result.content[0].text


async def test_tools_have_schemas_and_descriptions(server: str, keys: dict[str, str]) -> None:
    async with mcp_http(server, keys["tenant-a"]) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        templates = {t.uriTemplate for t in (await session.list_resource_templates()).resourceTemplates}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
        assert tool.inputSchema["type"] == "object" and tool.inputSchema["properties"]
    assert tools["get_context"].inputSchema["required"] == ["query"]
    assert {"memory://users/{user_id}/recent", "memory://agents/{agent_id}/recent", "memory://memories/{memory_id}"} <= templates


async def test_every_tool_over_http_matches_rest(server: str, keys: dict[str, str]) -> None:
    key = keys["tenant-a"]
    async with mcp_http(server, key) as session:
        stored = data(await session.call_tool("remember", {"note": CAT, "user_id": "ann", "speaker": "Ann"}))
        assert stored["accepted"] == 1
        logged = data(await session.call_tool("remember", {"user_id": "ann", "events": [
            {"event_id": "trip-1", "role": "user", "speaker": "Ann", "content": "I am flying to Lisbon on Friday for a conference."}]}))
        assert logged["event_ids"] == ["trip-1"]

        body = {"query": "What is my cat called?", "user_id": "ann", "budget_tokens": 256}
        answer = data(await session.call_tool("get_context", body))
        with rest(server, key) as client:
            expected = client.post("/v1/context", json=body).json()
        assert "Miso" in answer["context"] and answer["context"] == expected["context"]
        assert [u["id"] for u in answer["units"]] == [u["id"] for u in expected["units"]]
        assert answer["units"][0]["found_by"]

        found = data(await session.call_tool("search_memories", {"query": "cat Miso", "user_id": "ann", "limit": 3}))
        assert 1 <= len(found) <= 3 and "Miso" in found[0]["text"]
        cat = found[0]
        assert cat["source_event_ids"] == stored["event_ids"] and cat["score"] >= found[-1]["score"]

        history = data(await session.call_tool("memory_history", {"memory_id": cat["id"]}))
        assert history["id"] == cat["id"] and cat["id"] in [v["id"] for v in history["versions"]]

        one = (await session.read_resource(f"memory://memories/{cat['id']}")).contents[0]
        assert isinstance(one, TextResourceContents) and json.loads(one.text)["text"] == cat["text"]
        recent = (await session.read_resource("memory://users/ann/recent")).contents[0]
        assert isinstance(recent, TextResourceContents)
        assert cat["id"] in [u["id"] for u in json.loads(recent.text)]

        gone = data(await session.call_tool("forget", {"memory_id": cat["id"]}))
        assert gone == {"deleted": True, "id": cat["id"]}
        erased = data(await session.call_tool("forget", {"event_id": "trip-1"}))
        assert erased["deleted"] and erased["units_deleted"]
        with rest(server, key) as client:
            assert client.get(f"/v1/memories/{cat['id']}").status_code == 404
            assert client.get("/v1/events/trip-1").status_code == 404
        data(await session.call_tool("remember", {"note": "Ann plays the cello.", "user_id": "ann"}))
        scope = data(await session.call_tool("forget", {"user_id": "ann"}))
        assert scope["erased"] and scope["events_deleted"] == 2 and scope["units_deleted"] >= 1
        with rest(server, key) as client:
            assert client.get("/v1/memories", params={"user_id": "ann"}).json()["memories"] == []


async def test_tenants_never_see_each_other(server: str, keys: dict[str, str]) -> None:
    async with mcp_http(server, keys["tenant-a"]) as a, mcp_http(server, keys["tenant-b"]) as b:
        mine = data(await a.call_tool("remember", {"note": "My locker code is 4417.", "user_id": "bob"}))
        data(await b.call_tool("remember", {"note": "I like green tea.", "user_id": "bob"}))
        seen_by_b = data(await b.call_tool("get_context", {"query": "What is my locker code?", "user_id": "bob"}))
        assert "4417" not in seen_by_b["context"]
        assert "4417" in data(await a.call_tool("get_context", {"query": "What is my locker code?", "user_id": "bob"}))["context"]
        unit = data(await a.call_tool("search_memories", {"query": "locker code", "user_id": "bob"}))[0]
        assert "not found" in error_text(await b.call_tool("memory_history", {"memory_id": unit["id"]}))
        assert "not found" in error_text(await b.call_tool("forget", {"memory_id": unit["id"]}))
        assert "not found" in error_text(await b.call_tool("forget", {"event_id": mine["event_ids"][0]}))
        assert all("4417" not in u["text"] for u in data(await b.call_tool("search_memories", {"query": "locker", "user_id": "bob"})))
        with pytest.raises(Exception, match="not found"):
            await b.read_resource(f"memory://memories/{unit['id']}")
        # B erasing its own "bob" leaves A's "bob" whole.
        data(await b.call_tool("forget", {"user_id": "bob"}))
        assert data(await a.call_tool("memory_history", {"memory_id": unit["id"]}))["id"] == unit["id"]


async def test_a_wrong_key_is_refused(server: str) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server}/mcp", headers={"authorization": "Bearer ms_000000000000_nope"}, json=request)
        assert response.status_code == 401 and response.json()["detail"] == "unknown or revoked API key"
        assert (await client.post(f"{server}/mcp", json=request)).status_code == 401  # no key, keys exist
    with pytest.raises(BaseExceptionGroup, match="401|Unauthorized|unhandled"):  # the SDK client gives up on the 401
        async with asyncio.timeout(30), mcp_http(server, "ms_000000000000_nope") as session:
            await session.list_tools()


async def test_bad_input_gets_rests_message_and_stores_nothing(server: str, keys: dict[str, str]) -> None:
    key = keys["tenant-a"]
    with rest(server, key) as client:
        before = client.get("/v1/scopes").json()
        bad_event = {"user_id": "cy", "role": "robot", "content": "hello"}
        rest_role = client.post("/v1/events", json={"events": [bad_event]}).json()["detail"]
        rest_budget = client.post("/v1/context", json={"query": "q", "user_id": "cy", "budget_tokens": 0}).json()["detail"]
        rest_scope = client.post("/v1/context", json={"query": "q"}).json()["detail"]
        rest_owner = client.post("/v1/events", json={"events": [{"role": "user", "content": "no owner"}]}).json()["detail"]
        rest_twice = client.post("/v1/events", json={"events": [{**bad_event, "role": "user", "event_id": "x"}] * 2}).json()["detail"]
    async with mcp_http(server, key) as session:
        assert rest_role in error_text(await session.call_tool("remember", {"events": [{"role": "robot", "content": "hello"}], "user_id": "cy"}))
        assert rest_budget in error_text(await session.call_tool("get_context", {"query": "q", "user_id": "cy", "budget_tokens": 0}))
        assert rest_scope == "scope missing: give user_id or agent_id"
        assert rest_scope in error_text(await session.call_tool("get_context", {"query": "q"}))
        assert rest_owner in error_text(await session.call_tool("remember", {"note": "no owner"}))
        assert rest_twice in error_text(await session.call_tool("remember", {"user_id": "cy", "events": [
            {"event_id": "x", "role": "user", "content": "hello"}] * 2}))
        assert "exactly one" in error_text(await session.call_tool("forget", {"memory_id": 1, "user_id": "cy"}))
        assert "either" in error_text(await session.call_tool("remember", {"user_id": "cy"}))
        assert error_text(await session.call_tool("memory_history", {"memory_id": "seven"}))
    with rest(server, key) as client:
        assert client.get("/v1/scopes").json() == before
        assert client.get("/v1/events", params={"user_id": "cy"}).json()["events"] == []


def stdio_params(data_dir: Path, key: str | None) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_SERVICE_")}
    env["MEMORY_SERVICE_DATA_DIR"] = str(data_dir)
    if key is not None:
        env["MEMORY_SERVICE_API_KEY"] = key
    return StdioServerParameters(command=sys.executable, args=["-m", "memory_service.cli", "mcp"], env=env)


async def test_stdio_serves_the_keys_tenant_and_refuses_a_wrong_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    wrong = stdio_params(data_dir, "ms_000000000000_nope")
    refused = await asyncio.to_thread(
        subprocess.run, [wrong.command, *wrong.args], env=wrong.env, input="", capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "MEMORY_SERVICE_API_KEY: unknown or revoked API key" in refused.stderr

    async with stdio_client(stdio_params(data_dir, None)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()  # no key ever created: the local tenant
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        data(await session.call_tool("remember", {"note": CAT, "user_id": "ann"}))
        assert "Miso" in data(await session.call_tool("get_context", {"query": "my cat's name", "user_id": "ann"}))["context"]
        unit = data(await session.call_tool("search_memories", {"query": "cat", "user_id": "ann"}))[0]
        assert data(await session.call_tool("memory_history", {"memory_id": unit["id"]}))["versions"]
        assert "budget_tokens" in error_text(await session.call_tool("get_context", {"query": "q", "user_id": "ann", "budget_tokens": -1}))

    key = await make_key(data_dir, "tenant-s")  # from now on the key names the tenant; "local" data stays "local"
    async with stdio_client(stdio_params(data_dir, key)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert not data(await session.call_tool("search_memories", {"query": "cat", "user_id": "ann"}))
        data(await session.call_tool("remember", {"note": "I sing in a choir.", "user_id": "ann"}))
        erased = data(await session.call_tool("forget", {"user_id": "ann"}))
        assert erased["events_deleted"] == 1
