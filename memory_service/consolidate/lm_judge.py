"""Supersession judged by the local LM, with the heuristic where the LM is not needed or fails.

The heuristic is sure when both units state the same attribute of the same subject
("lives in", "works at", "port"): it compares the values itself. What it cannot read
is an update phrased any other way ("Caroline's new job is at the bakery" after
"Caroline works at the library" written differently, a changed plan, a reversed
decision); those close pairs go to the LM.

The LM only adds updates: every pair the heuristic accepts stays accepted without a
call, and the LM is asked about the close, same-subject pairs the heuristic turned
down. A small model says "yes" too easily, so a "yes" only counts when it is grounded:
the model must quote the old value from the older unit and a new, different value
from the newer one. A hallucinated or vague verdict fails that check and is a "no",
and so is an LM that errs, times out or answers nonsense (the heuristic's answer).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compressors.lm.client import LMClient
from compressors.prompts.supersession import VERDICT_SCHEMA, verdict_messages
from memory_service.consolidate.rules import HeuristicJudge, attribute_statements, same_subject
from memory_service.domain import MemoryUnit

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text.strip().strip(".,;:!?\"'").lower())


@dataclass
class JudgeStats:
    asked: int = 0
    updates_accepted: int = 0
    updates_ungrounded: int = 0
    failures: int = 0
    heuristic: int = 0


def grounded_update(verdict: Any, old: MemoryUnit, new: MemoryUnit) -> bool | None:
    """True: a grounded update; False: the model said no; None: it said yes without grounds."""
    if not isinstance(verdict, dict) or not isinstance(verdict.get("updates"), bool):
        raise ValueError(f"not a verdict: {verdict!r}"[:200])
    if not verdict["updates"]:
        return False
    old_value, new_value = _norm(str(verdict.get("old_value", ""))), _norm(str(verdict.get("new_value", "")))
    old_text, new_text = _norm(old.text), _norm(new.text)
    if not old_value or not new_value or old_value == new_value:
        return None
    if old_value not in old_text or new_value not in new_text or new_value in old_text:
        return None
    return True


class LMSupersessionJudge:
    """`min_similarity`: pairs less alike than this are left to the heuristic (they are rarely
    updates, and each LM call costs seconds on a CPU; at 0.6 "Ann likes pizza" / "Ann lives
    in Boston" would be asked). `max_calls` bounds the LM calls over
    the judge's life per consolidation run (the consolidator makes a judge per run)."""

    def __init__(
        self,
        lm: LMClient,
        heuristic: HeuristicJudge | None = None,
        min_similarity: float = 0.65,
        max_calls: int = 50,
        timeout_s: float = 60.0,
    ) -> None:
        self.lm = lm
        self.heuristic = heuristic or HeuristicJudge()
        self.min_similarity = min_similarity
        self.max_calls = max_calls
        self.timeout_s = timeout_s
        self.stats = JudgeStats()
        self._lock = threading.Lock()

    def supersedes(self, old: MemoryUnit, new: MemoryUnit, similarity: float) -> bool:
        if self.heuristic.supersedes(old, new, similarity):
            self.stats.heuristic += 1
            return True
        if not same_subject(old, new) or similarity < self.min_similarity or attribute_statements(old.text, new.text):
            return False  # nothing to ask: another subject, too far apart, or the heuristic compared the values
        with self._lock:
            if self.stats.asked >= self.max_calls:
                return False
            self.stats.asked += 1
        try:
            verdict = self.lm.ask_json(verdict_messages(old, new), VERDICT_SCHEMA, self.timeout_s)
            decision = grounded_update(verdict, old, new)
        except Exception as exc:
            log.info("LM supersession verdict failed (%s); keeping the heuristic's no", f"{type(exc).__name__}: {exc}"[:200])
            self.stats.failures += 1
            return False
        if decision is None:
            self.stats.updates_ungrounded += 1
            return False
        if decision:
            self.stats.updates_accepted += 1
        return decision


def judge_factory(choice: str, compressor: object) -> Callable[[], LMSupersessionJudge] | None:
    """The consolidator's judge for a `supersession_judge` setting (None: the heuristic)."""
    if choice == "heuristic" or (choice == "auto" and not isinstance(compressor, LMClient)):
        return None
    if not isinstance(compressor, LMClient):
        raise ValueError("supersession_judge=lm needs an LM compressor (llama_cpp, transformers or openai)")
    lm = compressor
    return lambda: LMSupersessionJudge(lm)
