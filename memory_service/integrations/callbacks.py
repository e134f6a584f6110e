"""`MemoryServiceCallbackHandler`: log an agent's run into the memory service as events.

Chat model inputs and outputs become `user` / `assistant` events and tool calls become
`tool` events (name, arguments, result). The callbacks only put events in a bounded
buffer; a background thread sends them in batches, so the agent never waits on the
service. `flush()` waits until everything buffered is sent; `close()` (also run at
interpreter exit) flushes and stops the thread, so a clean shutdown loses nothing. When
the buffer is full, new events are dropped and counted (`stats.dropped`) rather than
blocking the agent.

Event ids are derived from message ids (tool events from the tool call id), so the
conversation history a chat model is shown again on every turn is stored once.
Scope: the handler's `user_id` / `agent_id` / `session_id`, else the run's metadata
(`user_id`, `agent_id`, `session_id`, then LangGraph's `thread_id` as the session).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from memory_service.client import InvalidRequest, MemoryClient, MemoryServiceError, PayloadTooLarge
from memory_service.domain import EventIn, Role, ToolCall

log = logging.getLogger(__name__)

MAX_TOOL_RESULT_CHARS = 16_000
SEEN_IDS = 100_000


@dataclass
class HandlerStats:
    queued: int = 0
    sent: int = 0
    dropped: int = 0  # buffer full, or logged after close()
    rejected: int = 0  # the service refused the event (422/413)
    failed: int = 0  # still unsendable when close() gave up
    unscoped: int = 0  # no user_id/agent_id from the handler or the run


class MemoryServiceCallbackHandler(BaseCallbackHandler):
    run_inline = True  # the callbacks only append to a buffer: safe on an event loop
    raise_error = False

    def __init__(
        self,
        client: MemoryClient,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        user_speaker: str | None = None,
        assistant_speaker: str | None = None,
        log_system: bool = False,
        batch_size: int = 64,
        flush_interval: float = 0.5,
        max_buffer: int = 10_000,
        wait: bool = False,
        close_timeout: float = 30.0,
    ) -> None:
        """`wait`: ingest with `wait=true` (each batch is compressed before the next is sent)."""
        self.client = client
        self.user_id, self.agent_id, self.session_id = user_id, agent_id, session_id
        self.user_speaker, self.assistant_speaker = user_speaker, assistant_speaker
        self.log_system = log_system
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.wait = wait
        self.close_timeout = close_timeout
        self.stats = HandlerStats()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._buffer: deque[EventIn] = deque()
        self._inflight = 0
        self._flush_requested = False
        self._closing = False
        self._give_up_at: float | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._runs: dict[UUID, dict[str, str]] = {}
        self._tools: dict[UUID, tuple[dict[str, str], str, dict[str, Any], str | None]] = {}
        self._last_ts = datetime.now(UTC)
        self._thread = threading.Thread(target=self._work, name="memory-service-callback", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: (h := ref()) is not None and h.close())

    # -- LangChain callbacks ---------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        scope = self._scope(metadata)
        if scope is None:
            return
        with self._lock:
            self._runs[run_id] = scope
        events = [
            e for prompt in messages for i, m in enumerate(prompt)
            if (e := self._message_event(m, i, scope, run_id)) is not None
        ]
        self._enqueue(events)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        scope = self._scope(metadata)
        if scope is None:
            return
        with self._lock:
            self._runs[run_id] = scope
        events = [
            self._event(_hashed_id("prompt", scope, i, p), "user", self._speaker("user", scope), p, scope, run_id)
            for i, p in enumerate(prompts) if p.strip()
        ]
        self._enqueue(events)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        with self._lock:
            scope = self._runs.pop(run_id, None)
        if scope is None:
            return
        events: list[EventIn] = []
        for i, generation in enumerate(g for gens in response.generations for g in gens):
            if isinstance(generation, ChatGeneration):
                event = self._message_event(generation.message, i, scope, run_id)
            elif generation.text.strip():
                event = self._event(f"lc/run/{run_id}/{i}", "assistant", self._speaker("assistant", scope), generation.text, scope, run_id)
            else:
                event = None
            if event is not None:
                events.append(event)
        self._enqueue(events)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        scope = self._scope(metadata)
        if scope is None:
            return
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        arguments = _jsonable(inputs) if isinstance(inputs, dict) else {"input": input_str}
        tool_call_id = kwargs.get("tool_call_id")
        with self._lock:
            self._tools[run_id] = (scope, name, arguments, tool_call_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._tool_done(run_id, _tool_result(output))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._tool_done(run_id, {"error": f"{type(error).__name__}: {error}"})

    # -- buffer and background sending ---------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event logged so far is sent (or given up on). False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._buffer or self._inflight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float | None = None) -> None:
        """Send what is buffered and stop; events logged afterwards are dropped."""
        timeout = self.close_timeout if timeout is None else timeout
        with self._cond:
            if not self._closing:
                self._closing = True
                self._give_up_at = time.monotonic() + timeout
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout + 5)

    def __enter__(self) -> MemoryServiceCallbackHandler:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _enqueue(self, events: Sequence[EventIn]) -> None:
        if not events:
            return
        with self._cond:
            for event in events:
                assert event.event_id is not None
                if event.event_id in self._seen:
                    continue
                if self._closing or len(self._buffer) >= self.max_buffer:
                    self.stats.dropped += 1
                    continue
                self._seen[event.event_id] = None
                if len(self._seen) > SEEN_IDS:
                    self._seen.popitem(last=False)
                self._buffer.append(event)
                self.stats.queued += 1
            if len(self._buffer) >= self.batch_size:
                self._cond.notify_all()
        if self.stats.dropped:
            log.debug("memory-service callback: %d events dropped so far", self.stats.dropped)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closing or self._flush_requested or len(self._buffer) >= self.batch_size,
                    timeout=self.flush_interval,
                )
                if not self._buffer:
                    self._flush_requested = False
                    self._cond.notify_all()
                    if self._closing:
                        return
                    continue
                batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
                self._inflight += len(batch)
            try:
                self._send(batch)
            except Exception:  # never let the thread die: count and go on
                log.exception("memory-service callback: sending %d events failed", len(batch))
                self.stats.failed += len(batch)
            finally:
                with self._cond:
                    self._inflight -= len(batch)
                    self._cond.notify_all()

    def _send(self, batch: list[EventIn]) -> None:
        attempt = 0
        while True:
            try:
                self.client.ingest(batch, wait=self.wait)
            except (InvalidRequest, PayloadTooLarge) as exc:
                if len(batch) > 1:  # a batch is all or nothing: keep the good events
                    for event in batch:
                        self._send([event])
                    return
                log.warning("memory-service callback: event %s rejected: %s", batch[0].event_id, exc.message)
                self.stats.rejected += 1
                return
            except MemoryServiceError as exc:
                attempt += 1
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    log.error("memory-service callback: %d events not sent at close: %s", len(batch), exc)
                    self.stats.failed += len(batch)
                    return
                time.sleep(min(10.0, 0.2 * 2**attempt))
            else:
                self.stats.sent += len(batch)
                return

    # -- events -------------------------------------------------------------------------

    def _scope(self, metadata: Mapping[str, Any] | None) -> dict[str, str] | None:
        md = metadata or {}
        given = {
            "user_id": self.user_id or md.get("user_id"),
            "agent_id": self.agent_id or md.get("agent_id"),
            "session_id": self.session_id or md.get("session_id") or md.get("thread_id"),
        }
        scope = {k: str(v) for k, v in given.items() if v}
        if "user_id" not in scope and "agent_id" not in scope:
            with self._lock:
                self.stats.unscoped += 1
                first = self.stats.unscoped == 1
            if first:
                log.warning("memory-service callback: run without user_id/agent_id (handler or metadata): not logged")
            return None
        return scope

    def _speaker(self, role: Role, scope: Mapping[str, str]) -> str | None:
        if role == "user":
            return self.user_speaker or scope.get("user_id")
        if role == "assistant":
            return self.assistant_speaker or scope.get("agent_id")
        return None

    def _timestamp(self) -> datetime:
        # Strictly increasing, so events keep the order they were logged in.
        with self._lock:
            now = datetime.now(UTC)
            self._last_ts = now if now > self._last_ts else self._last_ts + timedelta(microseconds=1)
            return self._last_ts

    def _event(
        self, event_id: str, role: Role, speaker: str | None, content: str, scope: Mapping[str, str],
        run_id: UUID, tool: ToolCall | None = None,
    ) -> EventIn:
        return EventIn(
            event_id=event_id[:256],
            role=role,
            speaker=speaker,
            content=content,
            tool=tool,
            timestamp=self._timestamp(),
            metadata={"source": "langchain", "run_id": str(run_id)},
            **scope,
        )

    def _message_event(self, message: BaseMessage, position: int, scope: Mapping[str, str], run_id: UUID) -> EventIn | None:
        if isinstance(message, ToolMessage):
            result = _truncate(message.text)
            tool = ToolCall(name=message.name or "tool", result=result)
            return self._event(f"lc/tool/{message.tool_call_id}", "tool", None, "", scope, run_id, tool)
        if isinstance(message, SystemMessage) and not self.log_system:
            return None
        role: Role = "assistant" if isinstance(message, AIMessage) else "system" if isinstance(message, SystemMessage) else "user"
        content = message.text
        if not content.strip():  # e.g. an AI turn that only calls tools: the tool events say it
            return None
        event_id = f"lc/msg/{message.id}" if message.id else _hashed_id(message.type, scope, position, content)
        speaker = self._speaker(role, scope) if isinstance(message, (AIMessage, HumanMessage)) else None
        return self._event(event_id, role, speaker, content, scope, run_id)

    def _tool_done(self, run_id: UUID, result: Any) -> None:
        with self._lock:
            started = self._tools.pop(run_id, None)
        if started is None:
            return
        scope, name, arguments, tool_call_id = started
        event_id = f"lc/tool/{tool_call_id}" if tool_call_id else f"lc/tool/run-{run_id}"
        tool = ToolCall(name=name[:256], arguments=arguments, result=result)
        self._enqueue([self._event(event_id, "tool", None, "", scope, run_id, tool)])


def _hashed_id(kind: str, scope: Mapping[str, str], position: int, content: str) -> str:
    key = json.dumps([kind, sorted(scope.items()), position, content])
    return f"lc/{kind}/{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_TOOL_RESULT_CHARS else text[:MAX_TOOL_RESULT_CHARS] + "..."


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _tool_result(output: Any) -> Any:
    if isinstance(output, ToolMessage):
        return _truncate(output.text)
    if isinstance(output, str):
        return _truncate(output)
    try:
        text = json.dumps(output, default=str)
    except (TypeError, ValueError):
        text = str(output)
    return _truncate(text) if len(text) > MAX_TOOL_RESULT_CHARS else _jsonable(output)
