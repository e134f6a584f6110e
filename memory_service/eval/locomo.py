"""Reading LoCoMo-shaped files (the `locomo10.json` layout) as events, questions and raw turns.

BEAM's converted files (`../shared/bench/beam/`) have the same layout; their questions also
carry a `question_type` (the category's name) and a `rubric`. What a category is called and
whether a question is an abstention question are read from the data (`category_names`,
`is_abstention`), never from a table of one dataset's ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memory_service.domain import EventIn

_SESSION = re.compile(r"^session_(\d+)$")
_DIA = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")

LOCOMO_CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
"""The legend of `locomo10.json`, whose questions have no `question_type`: labels only, used for
a category none of whose questions names its type; no metric depends on them."""


@dataclass(frozen=True)
class Question:
    sample_id: str
    question: str
    answer: str | None
    evidence: list[str]
    category: int
    question_type: str | None = None
    abstention: bool = False
    """Nothing in the conversation answers it: the right context is empty (see `is_abstention`)."""


def is_abstention(qa: dict[str, Any]) -> bool:
    """Whether the data marks the question as one the conversation does not answer.

    Two markers, both in the data: a `question_type` containing "abstention" (BEAM's
    category 5, "nothing in the chat answers it", no evidence), or an `adversarial_answer`
    (LoCoMo's category 5: the question's premise is false, e.g. it asks about the other
    speaker; the file gives the answer an unwary reader would give, and the right reply is
    "not mentioned"). Which category holds them is never looked at.
    """
    return "abstention" in str(qa.get("question_type") or "").lower() or "adversarial_answer" in qa


def category_names(samples: Sequence[dict[str, Any]]) -> dict[int, str]:
    """Category id -> name: the commonest `question_type` of its questions, else LoCoMo's legend, else ''."""
    types: dict[int, dict[str, int]] = {}
    for sample in samples:
        for qa in sample.get("qa", []):
            counts = types.setdefault(int(qa["category"]), {})
            if qa.get("question_type"):
                counts[str(qa["question_type"])] = counts.get(str(qa["question_type"]), 0) + 1
    return {
        c: max(counts, key=lambda t: (counts[t], t)) if counts else LOCOMO_CATEGORY_NAMES.get(c, "")
        for c, counts in sorted(types.items())
    }


def parse_session_time(value: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> an aware UTC datetime."""
    return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def load(path: Path | str) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(s, dict) and "conversation" in s for s in data):
        raise ValueError(f"{path}: not a LoCoMo file (expected a list of objects with 'conversation')")
    return data


def select_samples(path: Path, conversations: Sequence[str] | None) -> list[dict[str, Any]]:
    """The file's samples, or the named ones in the given order; unknown names are an error."""
    samples = load(path)
    if not conversations:
        return samples
    by_id = {str(s.get("sample_id")): s for s in samples}
    unknown = [c for c in conversations if c not in by_id]
    if unknown:
        raise ValueError(f"{path}: no conversation {', '.join(unknown)} (it has {', '.join(by_id)})")
    return [by_id[c] for c in dict.fromkeys(conversations)]


def _sessions(conversation: dict[str, Any]) -> list[tuple[int, str]]:
    """(number, key) of each `session_<n>` in the conversation, in session order."""
    return sorted((int(m.group(1)), key) for key in conversation if (m := _SESSION.match(key)))


def sample_events(sample: dict[str, Any]) -> list[EventIn]:
    """One user_id per conversation, a session_id per session, event_id `<sample_id>/<dia_id>`."""
    sample_id = str(sample["sample_id"])
    conversation = sample["conversation"]
    speaker_a = conversation.get("speaker_a")
    events: list[EventIn] = []
    for number, key in _sessions(conversation):
        started = parse_session_time(conversation[f"{key}_date_time"])
        for i, turn in enumerate(conversation[key]):
            metadata: dict[str, Any] = {"dia_id": turn["dia_id"]}
            if turn.get("blip_caption"):
                metadata["blip_caption"] = turn["blip_caption"]
            events.append(
                EventIn(
                    event_id=f"{sample_id}/{turn['dia_id']}",
                    user_id=sample_id,
                    session_id=f"session_{number}",
                    role="user" if turn["speaker"] == speaker_a else "assistant",
                    speaker=turn["speaker"],
                    content=turn.get("text") or turn.get("blip_caption") or "(no text)",
                    timestamp=started + timedelta(seconds=30 * i),
                    metadata=metadata,
                )
            )
    return events


def normalize_dia_ids(evidence: list[str]) -> list[str]:
    """Lenient evidence parsing: 'D8:6; D9:17' -> two ids, 'D:11:26' -> 'D11:26', 'D30:05' -> 'D30:5'."""
    out: list[str] = []
    for item in evidence:
        for m in _DIA.finditer(str(item)):
            dia = f"D{int(m.group(1))}:{int(m.group(2))}"
            if dia not in out:
                out.append(dia)
    return out


def sample_questions(sample: dict[str, Any]) -> list[Question]:
    return [
        Question(
            sample_id=str(sample["sample_id"]),
            question=qa["question"],
            answer=None if qa.get("answer") is None else str(qa["answer"]),
            evidence=normalize_dia_ids(qa.get("evidence", [])),
            category=int(qa["category"]),
            question_type=str(qa["question_type"]) if qa.get("question_type") else None,
            abstention=is_abstention(qa),
        )
        for qa in sample.get("qa", [])
    ]


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    caption: str | None
    session_date: str

    @property
    def content(self) -> str:
        """What the turn says: its text and, for an image turn, the caption."""
        return f"{self.text} {self.caption}".strip() if self.caption else self.text

    def render(self) -> str:
        image = f" [image: {self.caption}]" if self.caption else ""
        return f"{self.speaker}: {self.text}{image}"


def sample_turns(sample: dict[str, Any]) -> list[Turn]:
    """A LoCoMo sample's turns in conversation order."""
    conversation = sample["conversation"]
    return [
        Turn(
            dia_id=str(turn["dia_id"]),
            speaker=str(turn.get("speaker", "")),
            text=str(turn.get("text") or ""),
            caption=turn.get("blip_caption") or None,
            session_date=str(conversation.get(f"{key}_date_time", "")),
        )
        for _, key in _sessions(conversation)
        for turn in conversation[key]
    ]
