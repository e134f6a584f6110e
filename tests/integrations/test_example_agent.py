"""The example agent end to end against a real `memory-service serve` process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from examples.memory_agent import ScriptedChatModel, demo
from memory_service.integrations.langchain import MemoryServiceRetriever
from memory_service.integrations.langgraph import MemoryServiceStore
from tests.server import running_server


@pytest.mark.slow
def test_example_agent_stores_and_recalls_through_a_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_server(data_dir) as (url, _process):
        store = MemoryServiceStore.connect(url)
        assert store.client is not None
        replies = demo(store.client, store, ScriptedChatModel(user_name="Ann"), user_id="ann")
        assert replies == ["Noted.", "From memory: Ann's cat is called Miso."]

        # The store item the tool saved.
        [item] = store.search(("memories", "ann"))
        assert item.value == {"content": "Ann's cat is called Miso."}

        # The callback logged both conversations (sent on the handler's clean close).
        events = list(store.client.iter_events(user_id="ann", agent_id="memory-agent"))
        assert {e.session_id for e in events} == {"t1", "t2"}
        assert [e.role for e in events if e.session_id == "t2"] == ["user", "assistant"]

        # The server compresses the logged turns in the background; the retriever then finds them.
        retriever = MemoryServiceRetriever(client=store.client, user_id="ann", agent_id="memory-agent")
        deadline = time.monotonic() + 60
        while not (docs := retriever.invoke("What is the cat called?")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert any("Miso" in d.page_content for d in docs)
        store.client.close()
