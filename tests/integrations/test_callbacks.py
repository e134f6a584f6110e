"""MemoryServiceCallbackHandler under the example agent: what it logs, failures, shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import HumanMessage

from api.inprocess import InProcessService
from examples.memory_agent import ScriptedChatModel, build_agent, chat
from memory_service.client import MemoryClient, RetryPolicy
from memory_service.integrations.callbacks import MemoryServiceCallbackHandler
from memory_service.integrations.langgraph import MemoryServiceStore


def _events(local: InProcessService, user_id: str) -> list:  # type: ignore[type-arg]
    return list(local.client().iter_events(user_id=user_id))


def test_agent_raising_mid_run_keeps_the_events_so_far(local: InProcessService) -> None:
    store = MemoryServiceStore(local.client(), local.async_client(), key_prefix="cb1")
    agent = build_agent(ScriptedChatModel(user_name="Ann"), store)
    handler = MemoryServiceCallbackHandler(local.client(), user_id="ann", agent_id="memory-agent")
    assert chat(agent, "Remember that my cat is called Miso.", user_id="ann", thread_id="t1", callbacks=[handler]) == "Noted."
    with pytest.raises(RuntimeError, match="scripted failure"):
        chat(agent, "Please fail now.", user_id="ann", thread_id="t2", callbacks=[handler])
    handler.close()

    events = [e for e in _events(local, "ann") if e.metadata.get("source") == "langchain"]
    summary = [(e.role, e.session_id, e.content or (e.tool.name if e.tool else "")) for e in events]
    assert summary == [
        ("user", "t1", "Remember that my cat is called Miso."),
        ("tool", "t1", "save_memory"),
        ("assistant", "t1", "Noted."),
        ("user", "t2", "Please fail now."),
    ]
    tool = events[1].tool
    assert tool is not None and tool.arguments == {"content": "Ann's cat is called Miso."}
    assert str(tool.result).startswith("saved memory ")
    assert all(e.agent_id == "memory-agent" for e in events)
    assert events[0].speaker == "ann" and events[2].speaker == "memory-agent"
    assert handler.stats.sent == 4 and handler.stats.dropped == handler.stats.failed == 0
    # The logged turns were compressed into memories like any other events.
    local.run(local.service.compress_pending())
    texts = [m.text for m in local.client().iter_memories(user_id="ann", agent_id="memory-agent")]
    assert any("Miso" in t for t in texts)


async def test_async_agent_run_is_logged(local: InProcessService) -> None:
    store = MemoryServiceStore(local.client(), local.async_client(), key_prefix="cb2")
    agent = build_agent(ScriptedChatModel(user_name="Bea"), store)
    handler = MemoryServiceCallbackHandler(local.client(), agent_id="async-agent")
    config = {"configurable": {"user_id": "bea", "thread_id": "a1"}, "metadata": {"user_id": "bea"}, "callbacks": [handler]}
    await agent.ainvoke({"messages": [HumanMessage("Remember that I play the cello.")], "memories": []}, config)
    assert await asyncio.to_thread(handler.flush, 30)
    events = [e for e in _events(local, "bea") if e.agent_id == "async-agent"]
    assert [e.role for e in events] == ["user", "tool", "assistant"]
    assert events[0].session_id == "a1"  # LangGraph's thread_id
    handler.close()


def test_service_down_never_blocks_or_breaks_the_agent(local: InProcessService) -> None:
    down = MemoryClient("http://127.0.0.1:9", retry=RetryPolicy(max_retries=1, base_delay=0.001), timeout=1)
    handler = MemoryServiceCallbackHandler(down, user_id="cy", max_buffer=3, close_timeout=0.5, flush_interval=0.05)
    model = ScriptedChatModel()
    started = time.monotonic()
    for i in range(5):
        assert model.invoke([HumanMessage(f"Question number {i} about nothing?")], {"callbacks": [handler]}).text
    assert time.monotonic() - started < 5
    handler.close()
    stats = handler.stats
    assert stats.sent == 0 and stats.queued + stats.dropped == 10  # 5 questions + 5 answers
    assert stats.failed == stats.queued  # given up on at close, after retrying until close_timeout


def test_unscoped_runs_are_skipped_and_history_is_logged_once(local: InProcessService) -> None:
    handler = MemoryServiceCallbackHandler(local.client())
    ScriptedChatModel().invoke([HumanMessage("Hello there?")], {"callbacks": [handler]})
    assert handler.stats.unscoped == 1 and handler.stats.queued == 0

    handler = MemoryServiceCallbackHandler(local.client(), user_id="dee", session_id="s")
    model = ScriptedChatModel()
    history = [HumanMessage("Where is the red notebook?")]
    history.append(model.invoke(history, {"callbacks": [handler]}))
    history.append(HumanMessage("And the blue pen?"))
    model.invoke(history, {"callbacks": [handler]})
    handler.close()
    contents = [e.content for e in _events(local, "dee")]
    assert contents == ["Where is the red notebook?", "I don't know.", "And the blue pen?", "I don't know."]
    # After close, events are dropped, not sent and not raised.
    model.invoke([HumanMessage("late?")], {"callbacks": [handler]})
    assert handler.stats.dropped == 2
