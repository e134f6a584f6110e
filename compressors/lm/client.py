"""The one LM client: "ask the model for JSON" and "score these tokens".

Compression, the supersession judge, LM query analysis and token pruning all talk
to a model through these faces and nothing else:

- `LMClient.ask_json`: one JSON answer to chat messages under a schema. `ModelClient`
  implements it over a backend's `_generate` (llama.cpp, transformers, an OpenAI-style
  server); every LM compressor is one, and `compressors.lm.isolated.IsolatedCompressor`
  forwards it to the same object in a child process.
- `TokenScorer`: token ids and their log-probabilities under a proxy model
  (`compressors.lm.scoring.LlamaCppScorer`, or `IsolatedScorer` hosting it in a child).

A caller that needs an LM takes one of these, never an `LMCompressor`: whatever
object answers, in process or isolated, is interchangeable.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from compressors.lm.output import InvalidOutput, json_text

Messages = list[dict[str, str]]

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_TOKENS = 1024


class GenerationTimeout(TimeoutError):
    pass


@dataclass
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Where the backend can tell (llama.cpp's perf counters, llama-server's `timings`): prompt
    # tokens actually evaluated (a prefix reused from the KV cache is not) and the seconds
    # that took, and the seconds spent generating `completion_tokens`. 0 when unknown.
    prompt_eval_tokens: int = 0
    prompt_eval_seconds: float = 0.0
    generation_seconds: float = 0.0


@runtime_checkable
class LMClient(Protocol):
    """What judgements beside compression need from an LM (the supersession judge, query analysis)."""

    def ask_json(self, messages: Messages, schema: dict[str, Any], timeout_s: float | None = None) -> Any: ...


class SequenceScorer(Protocol):
    label: str

    def prompt_tokens(self, context: str) -> list[int]: ...

    def text_tokens(self, text: str) -> list[int]: ...

    def continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        """log p(continuation | prompt), summed over the continuation's tokens, for each continuation."""
        ...


class TokenScorer(Protocol):
    """What token pruning needs from a proxy LM (`compressors.lm.scoring.LlamaCppScorer` has it)."""

    def bos_tokens(self) -> list[int]: ...

    def text_tokens(self, text: str) -> list[int]: ...

    def token_pieces(self, tokens: Sequence[int]) -> list[bytes]: ...

    def continuation_token_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[np.ndarray]: ...


class ModelClient(ABC):
    """An `LMClient` over one loaded model. Subclasses implement `_generate`."""

    def __init__(
        self, model: str, timeout_s: float | None = None, max_tokens: int | None = None, concurrency: int = 1
    ) -> None:
        self.model = model
        self.timeout_s = float(timeout_s or DEFAULT_TIMEOUT_S)
        self.max_tokens = int(max_tokens or DEFAULT_MAX_TOKENS)
        # Generations in flight at once: 1 for a model loaded here (one llama.cpp context);
        # more for a server that batches concurrent requests (the `openai` backend).
        self.concurrency = max(1, int(concurrency))
        self._lock = threading.BoundedSemaphore(self.concurrency)

    @abstractmethod
    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        """The model's answer to `messages`; raise GenerationTimeout past `deadline` (perf_counter)."""

    def ask_json(self, messages: Messages, schema: dict[str, Any], timeout_s: float | None = None) -> Any:
        """One JSON answer from the model, for judgements beside compression (e.g. supersession).

        Raises whatever the backend raises, GenerationTimeout, or InvalidOutput for an
        answer that is not JSON: callers fall back to a rule of their own.
        """
        deadline = time.perf_counter() + (timeout_s or self.timeout_s)
        with self._lock:
            generation = self._generate(messages, schema, deadline)
        try:
            return json.loads(json_text(generation.text))
        except json.JSONDecodeError as exc:
            raise InvalidOutput(f"the answer is not JSON: {exc}") from None
