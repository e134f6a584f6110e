"""`llama_cpp`: any GGUF model through llama-cpp-python, decoding constrained to the unit schema.

llama.cpp turns the JSON schema into a grammar, so the answer is always well-formed
JSON that cites only the window's events; grounding still checks what it says.

Windows are generated `sequences` at a time in one llama.cpp context
(`compressors.lm.batch_generation`): one decode per step for all of them, the fixed prompt
prefix evaluated once and kept, and the grammar asked about the greedy token first
(`compressors.lm.grammar_sampling`). Each window keeps its own deadline, repetition guard,
grounding and extractive fallback.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from opentelemetry import trace

from compressors.base import WindowResult, tracer
from compressors.lm.batch_generation import BatchedGenerator, GenerationOutcome, GenerationRequest, common_prefix
from compressors.lm.client import Generation, Messages
from compressors.lm.compressor import LMCompressor, RepetitionGuard, Usage
from compressors.lm.models import DEFAULT_CONTEXT_TOKENS, DEFAULT_SEQUENCES, gguf_path, load_llama, model_label
from compressors.lm.output import MAX_TEXT_CHARS, parse_answer
from compressors.prompts import compression as prompt
from compressors.prompts.compression import schema_events, unit_schema
from memory_service.domain import CompressionWindow

# Greedy decoding of a small model loops; a mild penalty (last 64 tokens) breaks most loops.
REPEAT_PENALTY = 1.1


# The converter's optional whitespace between JSON tokens (`space ::= " "?`).
_SPACE_RULE = re.compile(r"^space ::= .*$", re.MULTILINE)


@lru_cache(maxsize=64)
def schema_grammar(schema_json: str, compact: bool = False) -> str:
    """The GBNF llama-cpp-python's `response_format` would use for this schema; `compact`:
    with no whitespace between JSON tokens (strings keep theirs), so none is generated."""
    from llama_cpp import llama_grammar

    try:
        grammar = llama_grammar.json_schema_to_gbnf(schema_json)
    except Exception:  # as llama-cpp-python does: any JSON when the schema cannot be converted
        return llama_grammar.JSON_GBNF
    return _SPACE_RULE.sub('space ::= ""', grammar) if compact else grammar


def chat_formatter(llm: Any) -> Any:
    """The GGUF's chat template as `Llama.create_chat_completion` applies it (`chat_template.default`)."""
    from llama_cpp import llama_chat_format

    template = llm.metadata.get("tokenizer.chat_template")
    if template is None:
        raise ValueError("the GGUF has no chat template")
    eos, bos = llm.token_eos(), llm.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
    )


def chat_prompt(llm: Any, formatter: Any, messages: Messages) -> list[int]:
    """The prompt tokens `Llama.create_chat_completion` would evaluate for `messages`."""
    result = formatter(messages=messages)
    return list(llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))


def is_units_schema(schema: dict[str, Any]) -> bool:
    """A compression answer (`unit_schema`), not a judgement's."""
    return "units" in schema.get("properties", {})


def guard_for(schema: dict[str, Any]) -> RepetitionGuard | None:
    # Only a units answer can loop on repeated units; other schemas (judgements) are short. A text
    # is cut to MAX_TEXT_CHARS when parsed, so what the model writes past that is not generated.
    if not is_units_schema(schema):
        return None
    return RepetitionGuard(max_units=2 * schema_events(schema), max_text_chars=MAX_TEXT_CHARS)


class LlamaCppCompressor(LMCompressor):
    name = "llama_cpp"
    enforces_schema = True

    def __init__(
        self,
        model: str | None = None,
        context_tokens: int | None = None,
        threads: int | None = None,
        timeout_s: float | None = None,
        max_tokens: int | None = None,
        sequences: int | None = None,
        **_: Any,
    ) -> None:
        super().__init__(model_label(gguf_path(model)), timeout_s, max_tokens)
        self.llm = load_llama(model, context_tokens, threads)
        self.sequences = max(1, int(sequences or DEFAULT_SEQUENCES))
        self._formatter = chat_formatter(self.llm)
        shared = prompt.prefix_messages()
        first = self.prompt_tokens([*shared, {"role": "user", "content": "a"}])
        second = self.prompt_tokens([*shared, {"role": "user", "content": "b"}])
        self.generator = BatchedGenerator(
            self.llm, first[: common_prefix(first, second)], self.sequences,
            int(context_tokens or DEFAULT_CONTEXT_TOKENS), repeat_penalty=REPEAT_PENALTY,
        )

    def prompt_tokens(self, messages: Messages) -> list[int]:
        return chat_prompt(self.llm, self._formatter, messages)

    def _request(self, messages: Messages, schema: dict[str, Any], timeout_s: float) -> GenerationRequest:
        guard = guard_for(schema)
        return GenerationRequest(
            # a units answer is compact JSON, as the prompt's example shows
            self.prompt_tokens(messages), schema_grammar(json.dumps(schema), compact=is_units_schema(schema)),
            self.max_tokens, timeout_s, guard.should_stop if guard is not None else None,
        )

    @staticmethod
    def _generation(request: GenerationRequest, outcome: GenerationOutcome) -> Generation:
        return Generation(
            outcome.text, len(request.tokens), outcome.completion_tokens,
            prompt_eval_tokens=outcome.prompt_eval_tokens, prompt_eval_seconds=outcome.prompt_eval_seconds,
            generation_seconds=outcome.generation_seconds,
        )

    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        request = self._request(messages, schema, max(0.0, deadline - time.perf_counter()))
        outcome = self.generator.generate([request])[0]
        if outcome.error is not None:
            raise outcome.error
        return self._generation(request, outcome)

    def compress_window(self, window: CompressionWindow) -> WindowResult:
        return self.compress_windows([window])[0]

    def compress_windows(self, windows: Sequence[CompressionWindow]) -> list[WindowResult]:
        """Results for `windows`, in order, generated `sequences` at a time.

        Each window has its own `compress.window` span, from the call's start to the end of
        its grounding (which nests under it); the one `compress.lm` span of the batched
        generation is their sibling, since the windows share its decodes.
        """
        if not windows:
            return []
        spans = [
            tracer.start_span("compress.window", attributes={"events": len(w.events), "batched": len(windows)})
            for w in windows
        ]
        try:
            return self._compress_batch(windows, spans)
        finally:
            for span in spans:  # those a failure left open
                if span.is_recording():
                    span.end()

    def _compress_batch(self, windows: Sequence[CompressionWindow], spans: list[trace.Span]) -> list[WindowResult]:
        started = time.perf_counter()
        usages = [Usage() for _ in windows]
        answers: list[Any] = []
        requests: list[GenerationRequest | None] = []
        for window in windows:
            try:
                requests.append(self._request(prompt.messages(window), unit_schema(len(window.events)), self.timeout_s))
            except Exception as exc:  # this window alone goes extractive
                requests.append(None)
                answers.append(exc)
            else:
                answers.append(None)
        runnable = [r for r in requests if r is not None]
        with self._lock, tracer.start_as_current_span(
            "compress.lm", attributes={"compressor": self.name, "windows": len(runnable)}
        ):
            outcomes = iter(self.generator.generate(runnable))
        for i, request in enumerate(requests):
            if request is None:
                continue
            outcome = next(outcomes)
            usages[i].add(self._generation(request, outcome))
            try:
                if outcome.error is not None:
                    raise outcome.error
                answers[i] = parse_answer(outcome.text)
            except Exception as exc:
                answers[i] = exc
        seconds = time.perf_counter() - started  # the windows overlap: each took the batch's wall time
        results = []
        for window, answer, usage, span in zip(windows, answers, usages, spans, strict=True):
            with trace.use_span(span, end_on_exit=True):
                result = self._window_result(window, answer, usage, seconds)
                span.set_attributes({"prompt_eval_tokens": result.prompt_eval_tokens,
                                     "completion_tokens": result.completion_tokens,
                                     "fallback": result.fallback is not None})
            results.append(result)
        return results


def create_llama_cpp(**options: Any) -> LlamaCppCompressor:
    return LlamaCppCompressor(**options)
