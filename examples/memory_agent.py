"""A LangGraph agent with long-term memory in the memory service.

- `save_memory` (a tool) writes through the LangGraph store (`MemoryServiceStore.put`).
- Before each model call, `recall` searches the store with the user's message and puts
  what it finds in a system message (`MemoryServiceStore.search(query=...)`).
- `MemoryServiceCallbackHandler` logs the whole run (messages, tool calls) as events, so
  the conversation itself becomes memory too (`MemoryServiceRetriever` finds it).

The model is any LangChain chat model with tool calling. `ScriptedChatModel` is a
deterministic stand-in used by the test suite; `examples/openai_agent.py` runs the same
graph on a real OpenAI-compatible endpoint.

    python examples/memory_agent.py --url http://127.0.0.1:8080    # against a running server
    python examples/memory_agent.py                                 # in-process, in a temp dir
"""

from __future__ import annotations

import argparse
import re
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import InjectedStore, ToolNode, tools_condition
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from memory_service.client import MemoryClient
from memory_service.integrations.callbacks import MemoryServiceCallbackHandler
from memory_service.integrations.langgraph import MemoryServiceStore

MEMORY_NAMESPACE = "memories"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    memories: list[str]


def _user_id(config: RunnableConfig) -> str:
    return str((config.get("configurable") or {}).get("user_id", "anonymous"))


@tool
def save_memory(content: str, config: RunnableConfig, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """Save one self-contained fact about the user for later conversations."""
    key = uuid.uuid4().hex
    store.put((MEMORY_NAMESPACE, _user_id(config)), key, {"content": content})
    return f"saved memory {key}"


TOOLS: list[BaseTool] = [save_memory]


def build_agent(model: BaseChatModel, store: BaseStore) -> Any:
    """recall -> agent <-> tools; compiled with `store`, so tools and nodes can reach it."""
    bound = model.bind_tools(TOOLS)

    def recall(state: State, config: RunnableConfig) -> dict[str, Any]:
        question = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)).text
        found = store.search((MEMORY_NAMESPACE, _user_id(config)), query=question, limit=5)
        return {"memories": [item.value["content"] for item in found]}

    def agent(state: State) -> dict[str, Any]:
        system = "You are a helpful assistant with long-term memory. Save facts the user asks you to remember."
        if state.get("memories"):
            system += "\nWhat you remember about the user:\n" + "\n".join(f"- {m}" for m in state["memories"])
        return {"messages": [bound.invoke([SystemMessage(system), *state["messages"]])]}

    graph = StateGraph(State)
    graph.add_node("recall", recall)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile(store=store)


class ScriptedChatModel(BaseChatModel):
    """A deterministic chat model for tests and demos.

    "Remember that I ..." -> calls `save_memory` with the fact restated; after a tool
    result -> "Noted."; a question -> answers with the remembered line sharing the most
    words with it, or "I don't know."; a message containing "fail" raises.
    """

    user_name: str = "The user"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # type: ignore[return-value]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage("Noted.")
        text = last.text.strip()
        if "fail" in text.lower():
            raise RuntimeError("scripted failure")
        remember = re.match(r"(?i)remember(?: that)?\s+(.*)", text)
        if remember:
            fact = _third_person(remember.group(1).rstrip(".!"), self.user_name)
            call = {"name": "save_memory", "args": {"content": fact + "."}, "id": f"call_{uuid.uuid4().hex[:12]}"}
            return AIMessage("", tool_calls=[call])
        remembered = [
            line[2:] for m in messages if isinstance(m, SystemMessage) for line in m.text.splitlines() if line.startswith("- ")
        ]
        words = _words(text)
        best = max(remembered, key=lambda line: len(words & _words(line)), default=None)
        if best is None or not words & _words(best):
            return AIMessage("I don't know.")
        return AIMessage(f"From memory: {best}")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2} - {"what", "the", "who", "does", "you", "your"}


def _third_person(fact: str, name: str) -> str:
    replacements = {"i": name, "my": f"{name}'s", "me": name, "i'm": f"{name} is", "am": "is"}
    return " ".join(replacements.get(w.lower(), w) for w in fact.split())


def chat(agent: Any, text: str, *, user_id: str, thread_id: str, callbacks: list[Any]) -> str:
    config: RunnableConfig = {"configurable": {"user_id": user_id, "thread_id": thread_id}, "callbacks": callbacks}
    state = agent.invoke({"messages": [HumanMessage(text)], "memories": []}, config)
    return str(state["messages"][-1].text)


def demo(client: MemoryClient, store: MemoryServiceStore, model: BaseChatModel, user_id: str = "ann") -> list[str]:
    """Two conversations: the second recalls what the first saved. Returns the agent's replies."""
    agent = build_agent(model, store)
    replies = []
    with MemoryServiceCallbackHandler(client, user_id=user_id, agent_id="memory-agent") as handler:
        replies.append(chat(agent, "Remember that my cat is called Miso.", user_id=user_id, thread_id="t1", callbacks=[handler]))
        replies.append(chat(agent, "What is the name of my cat?", user_id=user_id, thread_id="t2", callbacks=[handler]))
    return replies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="memory-service URL; default: an in-process service in a temp dir")
    args = parser.parse_args(argv)
    model = ScriptedChatModel(user_name="Ann")
    if args.url:
        store = MemoryServiceStore.connect(args.url)
        assert store.client is not None
        for reply in demo(store.client, store, model):
            print(reply)
        return
    from api.inprocess import InProcessService
    from memory_service.settings import Settings

    with InProcessService(Settings(data_dir=Path(tempfile.mkdtemp()))) as local:
        client = local.client()
        for reply in demo(client, MemoryServiceStore(client, local.async_client()), model):
            print(reply)


if __name__ == "__main__":
    main()
