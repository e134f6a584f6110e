"""An LMCompressor whose answers are scripted, for pure unit tests of the rules around an LM's answer.

The real packaged SmolLM2 runs the same paths in the integration tests.
"""

from __future__ import annotations

from typing import Any

from compressors.lm.client import Generation
from compressors.lm.compressor import LMCompressor


class ScriptedLM(LMCompressor):
    """Answers with the next string of `answers`; the string "raise" makes the call fail."""

    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        super().__init__("scripted")
        self.answers = answers
        self.prompts: list[str] = []

    def _generate(self, messages: list[dict[str, str]], schema: dict[str, Any], deadline: float) -> Generation:
        self.prompts.append(messages[-1]["content"])
        answer = self.answers.pop(0)
        if answer == "raise":
            raise RuntimeError("model crashed")
        return Generation(answer)
