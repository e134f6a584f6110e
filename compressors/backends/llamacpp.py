"""`llama_cpp`: any GGUF model through llama-cpp-python, decoding constrained to the unit schema.

llama.cpp turns the JSON schema into a grammar, so the answer is always well-formed
JSON that cites only the window's events; grounding still checks what it says.
"""

from __future__ import annotations

import time
from typing import Any

from compressors.lm.client import Generation, GenerationTimeout, Messages
from compressors.lm.compressor import LMCompressor, RepetitionGuard
from compressors.lm.models import gguf_path, load_llama, model_label
from compressors.prompts.compression import schema_events

# Greedy decoding of a small model loops; a mild penalty (last 64 tokens) breaks most loops.
REPEAT_PENALTY = 1.1


def perf_counters(llm: Any) -> tuple[int, float, float]:
    """llama.cpp's running totals for this context: (prompt tokens evaluated, prompt ms, generation ms).

    Batches of more than one token count as prompt processing, single-token decodes as
    generation; a prefix reused from the KV cache is not evaluated again, so not counted.
    """
    from llama_cpp import llama_perf_context

    data = llama_perf_context(llm._ctx.ctx)
    return int(data.n_p_eval), float(data.t_p_eval_ms), float(data.t_eval_ms)


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
        before = perf_counters(self.llm)
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
        evaluated, prompt_ms, generation_ms = (a - b for a, b in zip(perf_counters(self.llm), before, strict=True))
        return Generation(
            "".join(pieces), max(0, self.llm.n_tokens - completion), completion,
            prompt_eval_tokens=int(evaluated), prompt_eval_seconds=prompt_ms / 1000, generation_seconds=generation_ms / 1000,
        )


def create_llama_cpp(**options: Any) -> LlamaCppCompressor:
    return LlamaCppCompressor(**options)
