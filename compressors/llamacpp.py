"""`llama_cpp`: any GGUF model through llama-cpp-python, decoding constrained to the unit schema.

llama.cpp turns the JSON schema into a grammar, so the answer is always well-formed
JSON that cites only the window's events; grounding still checks what it says.
"""

from __future__ import annotations

import os
import time
from typing import Any

from compressors.base import register_compressor
from compressors.lm import Generation, GenerationTimeout, LMCompressor, Messages, RepetitionGuard
from compressors.lm_output import schema_events
from compressors.models import gguf_path, model_label

DEFAULT_CONTEXT_TOKENS = 4096
# Greedy decoding of a small model loops; a mild penalty (last 64 tokens) breaks most loops.
REPEAT_PENALTY = 1.1


def load_llama(model: str | None, context_tokens: int | None, threads: int | None, logits_all: bool = False) -> Any:
    """A llama_cpp.Llama for `model` (a .gguf path; default the packaged SmolLM2)."""
    from llama_cpp import Llama  # the `lm` extra

    # One count for generation and prompt (batch) evaluation, default half the logical
    # CPUs: llama.cpp's default of all of them for batches spins against any other load
    # (measured 2-10x slower prompt evaluation on a busy 2-core machine).
    threads = int(threads or max(1, (os.cpu_count() or 2) // 2))
    return Llama(
        model_path=str(gguf_path(model)),
        n_ctx=int(context_tokens or DEFAULT_CONTEXT_TOKENS),
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=logits_all,
        seed=0,
        verbose=False,
    )


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
        **_: Any,
    ) -> None:
        super().__init__(model_label(gguf_path(model)), timeout_s, max_tokens)
        self.llm = load_llama(model, context_tokens, threads)

    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        stream = self.llm.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            temperature=0.0,
            repeat_penalty=REPEAT_PENALTY,
            max_tokens=self.max_tokens,
            stream=True,
        )
        pieces: list[str] = []
        # Only a units answer can loop on repeated units; other schemas (judgements) are short.
        guard = RepetitionGuard(max_units=2 * schema_events(schema)) if "units" in schema.get("properties", {}) else None
        for chunk in stream:
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                pieces.append(delta)
                if guard is not None and "}" in delta and guard.should_stop("".join(pieces)):
                    stream.close()
                    break
            if time.perf_counter() > deadline:
                stream.close()
                raise GenerationTimeout(f"no complete answer within {self.timeout_s:.0f} s")
        completion = len(pieces)  # one streamed chunk per sampled token
        return Generation("".join(pieces), max(0, self.llm.n_tokens - completion), completion)


@register_compressor("llama_cpp", native=True)
def create_llama_cpp(**options: Any) -> LlamaCppCompressor:
    return LlamaCppCompressor(**options)
