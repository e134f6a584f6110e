"""What every LM compressor shares: prompt, parse, ground, fall back, account.

A backend only implements `_generate` (chat messages + JSON schema -> text; see
`compressors.lm.client.ModelClient`, which also gives every compressor `ask_json`).
Whatever goes wrong with the model (an exception, a timeout, empty or invalid
output) the window falls back to the extractive compressor, so no event is lost,
and `WindowResult.fallback` says why (the pipeline marks the events for a retry).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from compressors.base import ProducedDraft, WindowResult, tracer
from compressors.cache_key import CacheIdentity
from compressors.extractive import ExtractiveCompressor
from compressors.grounding import carried_events, ground
from compressors.lm.client import Generation, ModelClient
from compressors.lm.output import OPEN_TEXT, TEXT_VALUE, InvalidOutput, LMUnit, parse_answer, salvage_units, to_draft
from compressors.prompts import compression as prompt
from compressors.prompts.compression import unit_schema
from memory_service.domain import CompressionWindow, MemoryUnitDraft

log = logging.getLogger(__name__)


@dataclass
class Usage:
    """A window's LM calls and tokens, summed over its generations (reported into its `WindowResult`)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_eval_tokens: int = 0
    prompt_eval_seconds: float = 0.0
    generated_tokens: int = 0
    generation_seconds: float = 0.0

    def add(self, generation: Generation) -> None:
        self.calls += 1
        self.prompt_tokens += generation.prompt_tokens
        self.completion_tokens += generation.completion_tokens
        self.prompt_eval_tokens += generation.prompt_eval_tokens
        self.prompt_eval_seconds += generation.prompt_eval_seconds
        if generation.generation_seconds > 0:
            self.generated_tokens += generation.completion_tokens
            self.generation_seconds += generation.generation_seconds

    def report(self, result: WindowResult) -> None:
        for name in ("prompt_tokens", "completion_tokens", "prompt_eval_tokens", "prompt_eval_seconds",
                     "generated_tokens", "generation_seconds"):
            setattr(result, name, getattr(self, name))
        result.lm_calls = self.calls



def _same_text(text: str) -> str:
    return " ".join(text.lower().split())


class RepetitionGuard:
    """Tells a streaming backend to stop once the model starts repeating units or runs on (small models loop).

    Feed it the answer so far whenever a chunk closes an object or a string, and every few
    tokens. It stops when a complete unit repeats an earlier one's text, as soon as the text
    of the unit being written does (the rest of that unit would be dropped as a duplicate
    anyway, so it need not be generated), or once that text is past `max_text_chars` (a note
    is one short sentence; a small model that keeps going is copying the log or rambling,
    and grounding rejects such text). What was complete before is kept (`parse_answer`
    salvages it).
    """

    def __init__(self, max_units: int, max_text_chars: int | None = None) -> None:
        self.max_units = max_units
        self.max_text_chars = max_text_chars
        self._complete = 0
        self._texts: set[str] = set()

    def _runs_on(self, answer: str) -> bool:
        if self.max_text_chars is None:
            return False
        start = answer.rfind('"text"')
        open_text = OPEN_TEXT.search(answer, start) if start >= 0 else None
        return open_text is not None and len(open_text.group(1)) > self.max_text_chars

    def should_stop(self, answer: str) -> bool:
        if self._runs_on(answer):
            return True
        units = salvage_units(answer)
        if len(units) != self._complete:
            self._complete = len(units)
            texts = [_same_text(u.text) for u in units]
            if len(units) > self.max_units or len(set(texts)) < len(texts):
                return True
            self._texts = set(texts)
        written = TEXT_VALUE.findall(answer)
        if len(written) <= self._complete:  # the unit being written has no complete text yet
            return False
        try:
            current = json.loads(f'"{written[-1]}"')
        except ValueError:
            return False
        return _same_text(current) in self._texts


def extractive_result(fallback: ExtractiveCompressor, window: CompressionWindow, reason: str) -> WindowResult:
    """The window compressed by `fallback` instead of the LM, with why (the pipeline marks it for a retry)."""
    drafts = fallback.compress(window)
    return WindowResult([ProducedDraft(d, fallback.name, fallback.version) for d in drafts], fallback=reason)


def window_names(window: CompressionWindow) -> list[str]:
    names: dict[str, None] = {}
    for event in (*window.context_events, *window.events):
        if event.speaker and event.speaker.strip():
            names[event.speaker.strip()] = None
    for unit in window.recent_units:
        names.update(dict.fromkeys(unit.persons))
    return list(names)


class LMCompressor(ModelClient):
    """Base of the LM backends. Subclasses set `name` and implement `_generate`."""

    name: str
    # True when the backend constrains decoding to the schema (no repair round needed).
    enforces_schema: bool = False
    # Windows one `compress_windows` call generates together in one model (llama_cpp's sequences).
    sequences: int = 1

    def __init__(
        self, model: str, timeout_s: float | None = None, max_tokens: int | None = None, concurrency: int = 1
    ) -> None:
        super().__init__(model, timeout_s, max_tokens, concurrency)
        self.fallback = ExtractiveCompressor()

    @property
    def version(self) -> str:
        return f"p{prompt.VERSION}:{self.model}"[:64]

    @property
    def cache_identity(self) -> CacheIdentity:
        # A cached window holds the extractive units that stand in for events the LM skipped
        # or that failed grounding, so a new extractive version must not reuse them.
        return CacheIdentity(self.name, self.model, f"{prompt.VERSION}+extractive{self.fallback.version}")

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        return [u.draft for u in self.compress_window(window).units]

    def compress_windows(self, windows: Sequence[CompressionWindow]) -> list[WindowResult]:
        """Results for `windows`, in their order; up to `concurrency` of them asked at once.

        Each window is compressed exactly as alone (its own prompt, deadline, grounding and
        fallback): only the waiting overlaps, which a server that batches requests turns
        into throughput.
        """
        if self.concurrency == 1 or len(windows) < 2:
            return [self.compress_window(w) for w in windows]
        # Each window runs in the caller's context (its own copy): the spans nest under the round's.
        contexts = [contextvars.copy_context() for _ in windows]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(windows)), thread_name_prefix=self.name) as pool:
            return list(pool.map(lambda c, w: c.run(self.compress_window, w), contexts, windows))

    def compress_window(self, window: CompressionWindow) -> WindowResult:
        with tracer.start_as_current_span("compress.window", attributes={"events": len(window.events)}):
            return self._compress_window(window)

    def _compress_window(self, window: CompressionWindow) -> WindowResult:
        started = time.perf_counter()
        usage = Usage()
        answer: list[LMUnit] | Exception
        try:
            with self._lock, tracer.start_as_current_span("compress.lm", attributes={"compressor": self.name}):
                answer = self._ask(window, usage, started + self.timeout_s)
        except Exception as exc:  # any model failure: the window goes extractive, nothing is lost
            answer = exc
        return self._window_result(window, answer, usage, time.perf_counter() - started)

    def _window_result(
        self, window: CompressionWindow, answer: list[LMUnit] | Exception, usage: Usage, seconds: float
    ) -> WindowResult:
        """The window's result from the model's units, or extractive when `answer` is the failure."""
        if isinstance(answer, Exception):
            reason = f"{type(answer).__name__}: {answer}"[:300]
            log.warning("%s failed on a window of %d events (%s); using extractive", self.name, len(window.events), reason)
            result = extractive_result(self.fallback, window, reason)
        else:
            with tracer.start_as_current_span("compress.grounding", attributes={"units": len(answer)}):
                result = self._assemble(window, answer)
        usage.report(result)
        result.lm_seconds = seconds
        return result

    def _ask(self, window: CompressionWindow, usage: Usage, deadline: float) -> list[LMUnit]:
        messages = prompt.messages(window)
        schema = unit_schema(len(window.events))
        generation = self._generate(messages, schema, deadline)
        usage.add(generation)
        try:
            return parse_answer(generation.text)
        except InvalidOutput as exc:
            if self.enforces_schema or time.perf_counter() >= deadline:
                raise
            log.info("%s: %s; asking once more", self.name, exc)
            retry = self._generate(prompt.repair_messages(messages, generation.text, str(exc)), schema, deadline)
            usage.add(retry)
            return parse_answer(retry.text)

    def _assemble(self, window: CompressionWindow, units: list[LMUnit]) -> WindowResult:
        """Grounded LM units, plus extractive units for every event whose content no accepted unit carries."""
        event_ids = [e.event_id for e in window.events]
        names = window_names(window)
        accepted: list[MemoryUnitDraft] = []
        seen: set[str] = set()
        rejected = repaired = 0
        for unit in units:
            draft = to_draft(unit, event_ids)
            verdict = ground(draft, window.events, names) if draft is not None else None
            if verdict is None or verdict.draft is None:
                rejected += 1
                if verdict is not None:
                    log.info("%s unit rejected (%s): %r", self.name, "; ".join(verdict.problems), unit.text[:120])
                continue
            key = verdict.draft.content_hash()
            if key in seen:
                continue
            seen.add(key)
            repaired += verdict.repaired
            if verdict.draft.kind in ("preference", "event"):
                verdict.draft.importance = 0.7  # as the extractive compressor rates them
            accepted.append(verdict.draft)
        # an event keeps its extractive unit unless an accepted unit carries its content
        by_id = {e.event_id: e for e in window.events}
        covered = {
            e.event_id for d in accepted for e in carried_events(d.text, [by_id[i] for i in d.source_event_ids])
        }
        extractive = [d for d in self.fallback.compress(window) if not covered.intersection(d.source_event_ids)]
        position = {event_id: i for i, event_id in enumerate(event_ids)}
        produced = [ProducedDraft(d, self.name, self.version) for d in accepted] + [
            ProducedDraft(d, self.fallback.name, self.fallback.version) for d in extractive
        ]
        produced.sort(key=lambda u: min(position[i] for i in u.draft.source_event_ids))
        return WindowResult(produced, lm_units=len(units), rejected=rejected, repaired=repaired)
