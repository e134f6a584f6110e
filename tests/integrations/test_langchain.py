"""MemoryServiceRetriever and the memory tools on the real service (in-process)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document

from api.inprocess import InProcessService
from memory_service.integrations.langchain import MemoryServiceRetriever, create_memory_tools

EVENTS = [
    {"user_id": "lin", "session_id": "s1", "role": "user", "speaker": "Lin",
     "content": "I keep three beehives in Lisbon.", "timestamp": "2024-05-01T09:00:00Z"},
    {"user_id": "lin", "session_id": "s2", "role": "user", "speaker": "Lin",
     "content": "My sister Ana visits Lisbon every summer.", "timestamp": "2024-05-02T09:00:00Z"},
    {"user_id": "max", "role": "user", "speaker": "Max", "content": "I sing in a choir in Berlin.",
     "timestamp": "2024-05-03T09:00:00Z"},
]


@pytest.fixture(scope="module")
def seeded(local: InProcessService) -> InProcessService:
    local.client().ingest(EVENTS, wait=True)
    return local


def test_documents_carry_text_score_dates_and_provenance(seeded: InProcessService) -> None:
    retriever = MemoryServiceRetriever(client=seeded.client(), user_id="lin")
    docs = retriever.invoke("What does Lin do in Lisbon?")
    assert docs and all(isinstance(d, Document) for d in docs)
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    top = docs[0]
    assert "Lisbon" in top.page_content and top.id == str(top.metadata["id"])
    assert top.metadata["kind"] in {"fact", "event", "preference", "procedure", "summary"}
    assert top.metadata["event_time"].startswith("202")
    event = seeded.client().get_event(top.metadata["source_event_ids"][0])
    assert event.user_id == "lin"
    assert all("Berlin" not in d.page_content for d in docs)  # scope: only Lin's memories


def test_scope_budget_and_k_per_call(seeded: InProcessService) -> None:
    retriever = MemoryServiceRetriever(client=seeded.client(), async_client=seeded.async_client(), user_id="lin")
    assert len(retriever.invoke("Lisbon", k=1)) == 1
    session = retriever.invoke("Lisbon", session_id="s2")
    assert session and all("Ana" in d.page_content for d in session)
    assert retriever.invoke("Lisbon", budget_tokens=1) == []  # nothing fits one token
    assert "Berlin" in retriever.invoke("Where does Max sing?", user_id="max")[0].page_content
    docs = asyncio.run(retriever.ainvoke("Lisbon", k=2))
    assert len(docs) == 2
    with pytest.raises(TypeError, match="unexpected arguments"):
        retriever.invoke("Lisbon", colour="blue")


def test_async_without_async_client_and_sync_without_client(seeded: InProcessService) -> None:
    sync_only = MemoryServiceRetriever(client=seeded.client(), user_id="lin", k=1)
    assert len(asyncio.run(sync_only.ainvoke("Lisbon"))) == 1
    async_only = MemoryServiceRetriever(async_client=seeded.async_client(), user_id="lin")
    with pytest.raises(RuntimeError, match="needs `client`"):
        async_only.invoke("Lisbon")


def test_tools_save_search_forget(local: InProcessService) -> None:
    save, search, forget = create_memory_tools(local.client(), local.async_client(), agent_id="helper")
    assert [t.name for t in (save, search, forget)] == ["save_memory", "search_memories", "forget_memory"]
    assert "config" not in save.args  # injected, not for the model
    config = {"configurable": {"user_id": "zoe"}}
    assert save.invoke({"content": "Zoe's passport expires in June 2027."}, config).startswith("Saved")
    found = search.invoke({"query": "When does Zoe's passport expire?"}, config)
    assert "passport" in found and found.startswith("- [id ")
    unit_id = int(found.split("[id ")[1].split("]")[0])
    assert forget.invoke({"memory_id": unit_id}, config) == f"Forgot memory {unit_id}."
    assert search.invoke({"query": "passport"}, config) == "No relevant memories."
    assert forget.invoke({"memory_id": unit_id}, config) == f"There is no memory {unit_id}."
    # Another user (from the run's config) sees nothing of Zoe's.
    save.invoke({"content": "Zoe likes jazz."}, config)
    assert search.invoke({"query": "jazz"}, {"configurable": {"user_id": "yan"}}) == "No relevant memories."


async def test_tools_async(local: InProcessService) -> None:
    save, search, forget = create_memory_tools(async_client=local.async_client(), user_id="ari")
    await save.ainvoke({"content": "Ari runs a marathon every October."})
    found = await search.ainvoke({"query": "marathon"})
    assert "marathon" in found
    unit_id = int(found.split("[id ")[1].split("]")[0])
    assert await forget.ainvoke({"memory_id": unit_id}) == f"Forgot memory {unit_id}."
    with pytest.raises(RuntimeError, match="without a MemoryClient"):
        await asyncio.to_thread(search.invoke, {"query": "marathon"})
