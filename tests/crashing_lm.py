"""A test-only LM backend that really crashes, for the LM process isolation tests.

`create_crashing_compressor` is given to the service as the compressor
"tests.crashing_lm:create_crashing_compressor". Its answers are grounded restatements
of each event (so the window's units come from this backend), except that a window
containing a crash word makes the process die natively: "segfault-now" calls
`faulthandler._sigsegv()`, "abort-now" calls `os.abort()`, and "hang-now" never returns.
Every other window is answered with one unit per event, restating it. Given a crash
word as its model, it crashes on every answer, as a broken native build would.
"""

from __future__ import annotations

import faulthandler
import json
import os
import time
from typing import Any

from compressors.base import WindowResult
from compressors.lm.client import Generation, Messages
from compressors.lm.compressor import LMCompressor
from memory_service.domain import CompressionWindow

CRASH_WORDS = ("segfault-now", "abort-now", "hang-now")


class CrashingLM(LMCompressor):
    name = "crashing_test_lm"
    enforces_schema = True

    def __init__(self, model: str | None = None, timeout_s: float | None = None, **_: Any) -> None:
        super().__init__("crashing-test-lm", timeout_s or 20.0, 512)
        # A crash word as the "model" makes every answer crash (a broken native build).
        self.always = model if model in CRASH_WORDS else ""

    def compress_window(self, window: CompressionWindow) -> WindowResult:
        self._window = window
        return super().compress_window(window)

    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        compressing = "units" in schema.get("properties", {})
        # A window's own events decide (not the overlap shown before them), a judgement its prompt.
        said = " ".join(e.content for e in self._window.events) if compressing else messages[-1]["content"]
        said = f"{self.always} {said}"
        if "segfault-now" in said:
            faulthandler._sigsegv()
        if "abort-now" in said:
            os.abort()
        if "hang-now" in said:
            time.sleep(3600)
        if not compressing:
            return Generation(json.dumps({"pid": os.getpid()}))
        units = [{"text": event.content, "kind": "fact", "source": [n]} for n, event in enumerate(self._window.events, 1)]
        return Generation(json.dumps({"units": units}))

    def pid(self) -> int:
        return os.getpid()


def create_crashing_compressor(**options: Any) -> CrashingLM:
    return CrashingLM(**options)


class CrashingScorer:
    """A token scorer for pruning (one token per byte, every token equally likely) that
    segfaults when asked to tokenize a text containing "segfault-now"."""

    def __init__(self, **_: Any) -> None:
        pass

    def bos_tokens(self) -> list[int]:
        return [0]

    def text_tokens(self, text: str) -> list[int]:
        if "segfault-now" in text:
            faulthandler._sigsegv()
        return list(text.encode())

    def token_pieces(self, tokens: list[int]) -> list[bytes]:
        return [bytes([t]) for t in tokens]

    def continuation_token_logprobs(self, prompt: list[int], continuations: list[list[int]]) -> list[Any]:
        import numpy as np

        # Longer words are "more surprising", so pruning has something to choose by.
        return [np.array([-1.0 - (t % 7) for t in tokens]) for tokens in continuations]


class Echo:
    """A tiny hosted object for the LMProcess unit tests."""

    def __init__(self, greeting: str = "hello") -> None:
        self.greeting = greeting

    def greet(self, name: str) -> str:
        return f"{self.greeting} {name}"

    def pid(self) -> int:
        return os.getpid()

    def fail(self) -> None:
        raise KeyError("no such thing")

    def segfault(self) -> None:
        faulthandler._sigsegv()

    def abort(self) -> None:
        os.abort()

    def exit(self) -> None:
        os._exit(3)

    def hang(self) -> None:
        time.sleep(3600)

    def unpicklable(self) -> Any:
        return lambda: None


def broken_factory(**_: Any) -> Echo:
    raise FileNotFoundError("model.gguf: no such file")
