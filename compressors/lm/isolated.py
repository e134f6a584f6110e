"""LM compressors and token scorers whose native model runs in an `LMProcess`.

They have the same face as the in-process objects (`LMCompressor`, `scoring.LlamaCppScorer`):
the `LMClient` and `TokenScorer` of `compressors.lm.client`,
so the pipeline, the supersession judge, query analysis and token pruning take them
unchanged. What differs is failure: when the child dies, hangs or is waiting to be
restarted, a window is compressed by the extractive compressor with the reason as its
`fallback` (the pipeline marks its events for a retry), and `ask_json` / scoring raise
`LMProcessError`, which their callers already treat as "no LM answer".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from compressors.base import WindowResult, factory_spec
from compressors.cache_key import CacheIdentity
from compressors.extractive import ExtractiveCompressor
from compressors.lm.client import Messages
from compressors.lm.compressor import extractive_result
from compressors.lm.process import DEFAULT_BACKOFF_S, LMProcess, LMProcessError, LMProcessStatus
from memory_service.domain import CompressionWindow, MemoryUnitDraft

log = logging.getLogger(__name__)


def hang_limit(timeout_s: float) -> float:
    """How long the parent waits for an answer the backend should give within `timeout_s`
    (its own deadline) before it takes the child as hung: a quarter more, 5 to 30 s."""
    return timeout_s + min(30.0, max(5.0, timeout_s / 4))


class IsolatedCompressor:
    """An LM compressor built by `factory` in a child process.

    The child starts here (loading the model), so a missing model fails at once, as it
    does in process; its name, version and cache identity are read from it then.
    """

    def __init__(self, factory: str, options: Mapping[str, Any] | None = None, *, label: str | None = None,
                 backoff_s: float = DEFAULT_BACKOFF_S) -> None:
        self.process = LMProcess(factory, options, label=label, backoff_s=backoff_s)
        self.fallback = ExtractiveCompressor()
        self.process.start()
        self.name: str = self._attribute("name")
        self.version: str = self._attribute("version")
        self.model: str = self._attribute("model")
        self.timeout_s: float = float(self._attribute("timeout_s"))
        self.enforces_schema: bool = bool(self._attribute("enforces_schema"))
        self.cache_identity: CacheIdentity | None = self._attribute("cache_identity")
        try:
            self.sequences: int = int(self._attribute("sequences"))
        except AttributeError:  # a backend from elsewhere that does not batch windows
            self.sequences = 1
        self.process.call_timeout_s = hang_limit(self.timeout_s)

    def _attribute(self, name: str) -> Any:
        return self.process.call("__getattribute__", (name,))

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        return [u.draft for u in self.compress_window(window).units]

    def compress_window(self, window: CompressionWindow) -> WindowResult:
        try:
            return self.process.call("compress_window", (window,))  # type: ignore[no-any-return]
        except LMProcessError as exc:
            log.warning("%s: window of %d events goes extractive (%s)", self.name, len(window.events), exc)
            return extractive_result(self.fallback, window, str(exc)[:300])

    def compress_windows(self, windows: Sequence[CompressionWindow]) -> list[WindowResult]:
        """A backend that generates several windows together gets them in one call (if the child
        dies then, all of them go extractive); any other gets one call per window, so a crash costs one."""
        if len(windows) < 2 or self.sequences < 2:
            return [self.compress_window(w) for w in windows]
        rounds = -(-len(windows) // max(1, self.sequences))
        try:
            return self.process.call(  # type: ignore[no-any-return]
                "compress_windows", (list(windows),), timeout_s=rounds * hang_limit(self.timeout_s)
            )
        except LMProcessError as exc:
            log.warning("%s: %d windows go extractive (%s)", self.name, len(windows), exc)
            return [extractive_result(self.fallback, w, str(exc)[:300]) for w in windows]

    def ask_json(self, messages: Messages, schema: dict[str, Any], timeout_s: float | None = None) -> Any:
        wait = hang_limit(timeout_s or self.timeout_s)
        return self.process.call("ask_json", (messages, schema, timeout_s), timeout_s=wait)

    def lm_status(self) -> LMProcessStatus:
        return self.process.status()

    def close(self) -> None:
        self.process.close()


class IsolatedScorer:
    """A token scorer (`compressors.lm.scoring.LlamaCppScorer` by default) in a child process.

    Nothing starts until the first call, so building one never fails; a failed call
    raises `LMProcessError` and the pruner keeps the texts as they are.
    """

    def __init__(self, factory: str = "compressors.lm.scoring:LlamaCppScorer", options: Mapping[str, Any] | None = None, *,
                 label: str = "token-scorer", timeout_s: float = 120.0, backoff_s: float = DEFAULT_BACKOFF_S) -> None:
        self.process = LMProcess(factory, options, label=label, call_timeout_s=timeout_s, backoff_s=backoff_s)

    def bos_tokens(self) -> list[int]:
        return self.process.call("bos_tokens")  # type: ignore[no-any-return]

    def prompt_tokens(self, context: str) -> list[int]:
        return self.process.call("prompt_tokens", (context,))  # type: ignore[no-any-return]

    def text_tokens(self, text: str) -> list[int]:
        return self.process.call("text_tokens", (text,))  # type: ignore[no-any-return]

    def token_pieces(self, tokens: Sequence[int]) -> list[bytes]:
        return self.process.call("token_pieces", (list(tokens),))  # type: ignore[no-any-return]

    def continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        return self.process.call("continuation_logprobs", (prompt, list(continuations)))  # type: ignore[no-any-return]

    def continuation_token_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[np.ndarray]:
        return self.process.call("continuation_token_logprobs", (prompt, list(continuations)))  # type: ignore[no-any-return]

    def lm_status(self) -> LMProcessStatus:
        return self.process.status()

    def close(self) -> None:
        self.process.close()


def isolate(name: str, options: Mapping[str, Any] | None = None, *, backoff_s: float = DEFAULT_BACKOFF_S) -> IsolatedCompressor:
    """Backend `name` (built-in, entry point or "module:callable") with its model in a child process."""
    return IsolatedCompressor(factory_spec(name), options, label=name, backoff_s=backoff_s)
