"""Parsing an LM compressor's answer back into drafts, salvaging what a broken answer holds.

The schema the answer must fit is asked for with the prompt (`compressors.prompts.compression`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from memory_service.domain import MemoryUnitDraft, UnitKind

KINDS: tuple[str, ...] = get_args(UnitKind)
MAX_TEXT_CHARS = 400
MAX_LIST_ITEMS = 6
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


class InvalidOutput(ValueError):
    """The model's answer is empty, not JSON, or not shaped like the schema."""


class LMUnit(BaseModel):
    """One unit as the model wrote it; lenient about what a grammar cannot rule out."""

    model_config = ConfigDict(extra="ignore")

    text: str
    kind: str = "fact"
    source: list[int] = Field(default_factory=list)
    event_time: str | None = None
    persons: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    location: str | None = None
    topic: str | None = None

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("text is empty")
        return value[:MAX_TEXT_CHARS]

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        if isinstance(value, (int, str)):
            value = [value]
        if isinstance(value, list):
            out = []
            for item in value:
                try:
                    out.append(int(str(item).strip().strip("[]")))
                except ValueError:
                    continue
            return out
        return value

    @field_validator("persons", "entities", "keywords", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [" ".join(str(v).split()) for v in value if str(v).strip()][:MAX_LIST_ITEMS]
        return value

    @field_validator("location", "topic", "event_time", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> Any:
        if value is None:
            return None
        text = " ".join(str(value).split())
        return text or None


class LMAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    units: list[LMUnit]


def json_text(raw: str) -> str:
    """The JSON part of a model's answer (code fences and chatter around it removed)."""
    text = _FENCE.sub("", raw.strip())
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise InvalidOutput("the answer contains no JSON")
    end = max(text.rfind("}"), text.rfind("]"))
    return text[start : end + 1]


_UNITS_ARRAY = re.compile(r'"units"\s*:\s*\[|^\s*\[')


# The body of a JSON string, escapes kept (inside it a quote is escaped, so it cannot end early).
_STRING_BODY = r'((?:[^"\\]|\\.)*)'
# A unit's "text" value, closed; and one still open at the end of an answer (a cut escape aside).
TEXT_VALUE = re.compile(r'"text"\s*:\s*"' + _STRING_BODY + '"')
OPEN_TEXT = re.compile(r'"text"\s*:\s*"' + _STRING_BODY + r'\\?\Z')
# A unit cut off inside its text: its sources, and the text written so far.
_OPEN_UNIT = re.compile(r'\{\s*"source"\s*:\s*(\[[^\]]*\])\s*,\s*' + OPEN_TEXT.pattern)
_CUT_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{0,3}\Z")  # "\u00" at the cut
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def open_unit(raw: str) -> dict[str, Any] | None:
    """The unit `raw` ends inside, its text kept up to its last full sentence (None without one).

    A stop in the middle of a text (the run-on guard, max_tokens, a timeout) still leaves
    the sentences before it, which grounding checks like any other text; `kind` is unknown."""
    m = _OPEN_UNIT.match(raw)
    if m is None:
        return None
    try:
        source = json.loads(m.group(1))
        text = json.loads(f'"{_CUT_ESCAPE.sub("", m.group(2))}"', strict=False)
    except ValueError:
        return None
    ends = [e.end() for e in _SENTENCE_END.finditer(text)]
    if not ends:
        return None
    return {"source": source, "text": text[: ends[-1]], "kind": "fact"}


def salvage_objects(raw: str, open_tail: bool = False) -> list[Any]:
    """The complete items at the start of a cut-off units array (max_tokens, timeout, loop stop);
    `open_tail`: and the unit it was cut inside, to its last full sentence (`open_unit`)."""
    m = _UNITS_ARRAY.search(raw)
    if m is None:
        return []
    decoder = json.JSONDecoder(strict=False)
    items: list[Any] = []
    pos = m.end()
    while True:
        while pos < len(raw) and raw[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(raw) or raw[pos] != "{":
            return items
        try:
            item, pos = decoder.raw_decode(raw, pos)
        except json.JSONDecodeError:
            tail = open_unit(raw[pos:]) if open_tail else None
            return items + [tail] if tail is not None else items
        items.append(item)


def salvage_units(raw: str, open_tail: bool = False) -> list[LMUnit]:
    units = []
    for item in salvage_objects(raw, open_tail):
        try:
            units.append(LMUnit.model_validate(item))
        except ValidationError:
            continue
    return units


def parse_answer(raw: str) -> list[LMUnit]:
    """The units of a model answer (or of its complete beginning). Raises InvalidOutput when none can be read."""
    if not raw or not raw.strip():
        raise InvalidOutput("the answer is empty")
    try:
        # strict=False: a raw newline or tab inside a string (grammars allow them) is kept, not fatal
        data = json.loads(json_text(raw), strict=False)
    except json.JSONDecodeError as exc:
        salvaged = salvage_units(_FENCE.sub("", raw.strip()), open_tail=True)
        if salvaged:
            return salvaged
        raise InvalidOutput(f"the answer is not valid JSON: {exc}") from None
    if isinstance(data, list):
        data = {"units": data}
    elif isinstance(data, dict) and "units" not in data and "text" in data:
        data = {"units": [data]}
    try:
        return LMAnswer.model_validate(data).units
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidOutput(f"the answer does not match the schema: {where}: {first['msg']}") from None


def parse_date(value: str | None) -> datetime | None:
    if not value or not _DATE.match(value):
        return None
    try:
        return datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def to_draft(unit: LMUnit, event_ids: list[str]) -> MemoryUnitDraft | None:
    """A draft citing the window events `unit.source` numbers (1-based); None if it cites none."""
    cited = list(dict.fromkeys(event_ids[n - 1] for n in unit.source if 1 <= n <= len(event_ids)))
    if not cited:
        return None
    kind = unit.kind.strip().lower()
    return MemoryUnitDraft(
        text=unit.text,
        kind=kind if kind in KINDS else "fact",  # type: ignore[arg-type]
        keywords=unit.keywords,
        persons=unit.persons,
        entities=unit.entities,
        location=unit.location,
        topic=unit.topic,
        event_time=parse_date(unit.event_time),
        source_event_ids=cited,
    )
