"""The extractive compressor: no language model, one memory unit per informative event.

Every LM compressor falls back to this one, so it must never fail on odd input and
must stay fast (thousands of events per second on one core).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compressors.text.code import split_code_blocks, strip_markdown
from compressors.text.dates import resolve_relative_dates
from compressors.text.extract import (
    clean_sentence,
    content_words,
    extract_entities,
    extract_keywords,
    extract_persons,
    is_filler,
    split_sentences,
)
from compressors.text.speakers import rewrite_first_person
from compressors.text.words import MONTH_PATTERN, WEEKDAY_PATTERN
from memory_service.domain import CompressionWindow, Event, MemoryUnitDraft, UnitKind

PERSON_ROLES = frozenset({"user", "assistant"})

_PREFERENCE = re.compile(
    r"\b(?:(?P<verb>lov(?:e|es|ed|ing)|hat(?:e|es|ed|ing)|dislik(?:e|es|ed|ing))"
    r"|favou?rites?|prefer(?:s|red|ring|ences?)?|enjoy(?:s|ed|ing)?|can['\u2019]?t stand|(?:big )?fan of)\b",
    re.IGNORECASE,
)
# "love" as a noun ("their love", "loved ones") is no preference
_NOUN_BEFORE = re.compile(
    r"\b(?:our|their|your|his|her|its|the|a|of|with|in|for|and|much|so|lots of|full of)\s+$|['\u2019]s\s+$",
    re.IGNORECASE,
)
_LOVED_ONES = re.compile(r"\s+ones?\b", re.IGNORECASE)
_PAST_TENSE = re.compile(
    r"\b(?:was|were|did|had|went|got|made|took|came|saw|met|bought|told|gave|ran|ate|wrote|felt|found|left|"
    r"began|spent|won|lost|became|brought|thought|heard|sent|built|paid|sold|kept|held|drove|flew|swam|sang|"
    r"taught|caught|[a-z]{3,}ed)\b",
    re.IGNORECASE,
)
_NOT_PAST = frozenset(["indeed", "proceed", "exceed", "succeed", "hundred", "embed", "breed", "need", "seed", "speed", "feed"])
_MONTH = MONTH_PATTERN
_ABSOLUTE_DATE = re.compile(
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b{_MONTH}\s+(?:19|20)\d{{2}}\b"
    r"|\b(?:in|since|during|back in)\s+(?:19|20)\d{2}\b"
    r"|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    rf"|\b(?:on|last)\s+{WEEKDAY_PATTERN}\b"
)
_END_PUNCTUATION = (".", "!", "?", "\u2026", '"', "'", ")", "\u201d")
_ERROR_PREFIX = re.compile(r"^\s*(?:error|exception|fatal|traceback)\b", re.IGNORECASE)
_ERROR_LABEL = re.compile(r"^(?:error|exception|fatal)\s*[:\-]?\s*", re.IGNORECASE)
_ERROR_STATUS = frozenset({"error", "failed", "failure", "fail", "err"})
# Bounds on what one event costs: a pasted log or blob is read only this far, and
# no sentence or caption grows a unit past a few hundred characters.
MAX_CONTENT_CHARS = 20_000
MAX_SENTENCE_CHARS = 500
MAX_CAPTION_CHARS = 300


@dataclass(slots=True)
class _Sentence:
    index: int
    text: str
    when: datetime | None
    attributed: bool
    words: int


def expresses_preference(text: str) -> bool:
    for m in _PREFERENCE.finditer(text):
        if not m.group("verb"):
            return True
        if _NOUN_BEFORE.search(text, max(0, m.start() - 12), m.start()):
            continue
        if _LOVED_ONES.match(text, m.end()):
            continue
        return True
    return False


def _has_past_tense(text: str) -> bool:
    return any(m.group(0).lower() not in _NOT_PAST for m in _PAST_TENSE.finditer(text))


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _first_words(text: str, limit: int) -> str:
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit]) + "\u2026"


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _compact(value: Any, limit: int = 40) -> str:
    if isinstance(value, str):
        text = _truncate(" ".join(value.split()), limit)
        return json.dumps(text, ensure_ascii=False) if re.search(r"[\s,;=]", text) or not text else text
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return _truncate(text, limit)


def format_tool_arguments(arguments: dict[str, Any], limit: int = 3) -> str:
    """At most `limit` key=value pairs, scalar arguments first, values cut to 40 characters."""
    items = sorted(arguments.items(), key=lambda kv: not _scalar(kv[1]))  # stable: keeps order otherwise
    parts = [f"{key}={_compact(value)}" for key, value in items[:limit]]
    if len(items) > limit:
        parts.append(f"+{len(items) - limit} more")
    return ", ".join(parts)


def _string_gist(text: str, words: int = 30) -> str:
    sentences = split_sentences(text)
    first = sentences[0] if sentences else text.strip()
    return _truncate(_first_words(first, words), 240)


def _error_message(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("message", "detail", "reason", "error", "description", "msg"):
            if value.get(key):
                return _error_message(value[key])
        return _dict_gist(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.lower().startswith("traceback"):
            lines = [line.strip() for line in stripped.splitlines() if line.strip()]
            return _truncate(lines[-1], 240) if lines else "traceback"
        gist = _string_gist(stripped)
        return _ERROR_LABEL.sub("", gist, count=1) or gist
    return _compact(value, 120)


def _dict_gist(result: dict[str, Any], limit: int = 6) -> str:
    parts = []
    for key, value in list(result.items())[:limit]:
        if _scalar(value):
            parts.append(f"{key}={_compact(value)}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"{key}=[{len(value)} item{'s' if len(value) != 1 else ''}]")
        elif isinstance(value, dict):
            parts.append(f"{key}={{{len(value)} key{'s' if len(value) != 1 else ''}}}")
        else:
            parts.append(f"{key}={_compact(value)}")
    if len(result) > limit:
        parts.append(f"+{len(result) - limit} more")
    return ", ".join(parts)


def _is_noise_value(value: Any) -> bool:
    if value is None or value is True or value in ("", {}, []):
        return True
    return isinstance(value, str) and len(value) <= 40 and is_filler(value)


def summarize_tool_result(result: Any) -> tuple[str, bool, bool]:
    """(gist, failed, noise) for a tool result of any shape."""
    if isinstance(result, str):
        stripped = result.strip()
        if stripped[:1] in "{[":
            try:
                return summarize_tool_result(json.loads(stripped))
            except ValueError:
                pass
        if _is_noise_value(stripped):
            return _truncate(stripped, 40), False, True
        if _ERROR_PREFIX.match(stripped):
            return _error_message(stripped), True, False
        return _string_gist(stripped), False, False
    if isinstance(result, dict):
        if not result:
            return "{}", False, True
        status = result.get("status")
        failed = (
            bool(result.get("error"))
            or (isinstance(status, str) and status.lower() in _ERROR_STATUS)
            or result.get("ok") is False
            or result.get("success") is False
        )
        if failed:
            return _error_message(result), True, False
        # {"status": "ok"}, {"success": true}: the call happened, nothing more to learn
        noise = len(result) <= 2 and all(
            _scalar(v) and (_is_noise_value(v) or isinstance(v, bool) or k in ("status", "ok", "success"))
            for k, v in result.items()
        )
        return _dict_gist(result), False, noise
    if isinstance(result, (list, tuple)):
        if not result:
            return "[]", False, True
        head = result[0]
        head_gist = _dict_gist(head, 3) if isinstance(head, dict) else _compact(head, 60)
        return f"{len(result)} item{'s' if len(result) != 1 else ''}, first: {head_gist}", False, False
    if result is None:
        return "", False, True
    return _compact(result, 60), False, result is True


class ExtractiveCompressor:
    """Restates each event of the window as one third-person unit; no model involved.

    The turn is cleaned first (filler and sentences repeated within it dropped, markdown
    marks dropped, each fenced code block reduced to one line naming what it imports,
    defines, sets and runs); a turn still over `max_words` keeps its densest sentences.
    """

    name = "extractive"
    version = "2"

    def __init__(self, max_words: int | None = 60, **_: Any) -> None:
        self.max_words = max(10, int(max_words or 60))

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]:
        known = _known_names(window)
        drafts: list[MemoryUnitDraft] = []
        for event in window.events:
            draft = self._tool_unit(event, known) if event.tool is not None else self._text_unit(event, known)
            if draft is not None:
                drafts.append(draft)
        return drafts

    # ------------------------------------------------------------------ conversation turns

    def _sentences(self, event: Event, speaker: str) -> list[_Sentence]:
        """The turn's informative sentences in order: filler and repeats dropped, markdown marks
        dropped, each fenced code block as one sentence naming what it imports, defines, sets, runs."""
        kept: list[_Sentence] = []
        seen: set[str] = set()
        for segment in split_code_blocks(event.content[:MAX_CONTENT_CHARS]):
            pieces = [segment.text] if segment.code else split_sentences(strip_markdown(segment.text))
            for raw in pieces:
                if is_filler(raw):
                    continue
                text = clean_sentence(_truncate(raw, MAX_SENTENCE_CHARS))
                if not text or is_filler(text):
                    continue
                key = text.lower()
                if key in seen:  # a sentence repeated within the turn
                    continue
                seen.add(key)
                if segment.code:
                    when, attributed = None, False
                else:
                    text, when = resolve_relative_dates(text, event.timestamp)
                    text, attributed = rewrite_first_person(text, speaker)
                # a code line always closes with a period; prose may end on a colon (what follows explains it)
                if segment.code or not text.endswith((*_END_PUNCTUATION, ":")):
                    text += "."
                kept.append(_Sentence(len(kept), text, when, attributed, len(text.split())))
        return kept

    def _select(self, sentences: list[_Sentence]) -> list[_Sentence]:
        """Highest keyword density first, up to `max_words`, then back in the original order."""
        if sum(s.words for s in sentences) <= self.max_words:
            return sentences

        def density(s: _Sentence) -> float:
            return len(content_words(s.text)) / max(1, s.words) + (0.2 if s.when else 0.0)

        chosen: list[_Sentence] = []
        budget = self.max_words
        for sentence in sorted(sentences, key=lambda s: (-density(s), s.index)):
            if sentence.words <= budget:
                chosen.append(sentence)
                budget -= sentence.words
            elif not chosen:
                sentence.text = _first_words(sentence.text, budget)
                chosen.append(sentence)
                break
        return sorted(chosen, key=lambda s: s.index)

    def _text_unit(self, event: Event, known: list[str]) -> MemoryUnitDraft | None:
        speaker = event.speaker_name
        sentences = self._select(self._sentences(event, speaker))
        caption = _truncate(event.caption, MAX_CAPTION_CHARS)
        if not sentences and not caption:
            return None
        if sentences:
            body = " ".join(s.text for s in sentences)
            if not any(s.attributed for s in sentences):
                body = f"{speaker} said: {body}"
            text = f"{body} (shared an image: {caption})" if caption else body
        else:
            body = speaker
            text = f"{speaker} shared an image: {caption}"
        when = next((s.when for s in sentences if s.when is not None), None)
        if expresses_preference(" ".join(s.text for s in sentences)):
            kind: UnitKind = "preference"
        elif when is not None or (_has_past_tense(text) and _ABSOLUTE_DATE.search(text)):
            kind = "event"
        else:
            kind = "fact"
        return MemoryUnitDraft(
            text=text,
            kind=kind,
            keywords=extract_keywords(f"{body} {caption}"),  # not "shared", "image"
            persons=_persons(event, text, known),
            entities=extract_entities(text),
            event_time=when or event.timestamp,
            source_event_ids=[event.event_id],
            importance=0.7 if kind in ("preference", "event") else 0.5,
        )

    # ------------------------------------------------------------------ tool calls

    def _tool_unit(self, event: Event, known: list[str]) -> MemoryUnitDraft:
        assert event.tool is not None
        tool = event.tool
        if event.speaker:
            caller = event.speaker
        elif event.role == "tool":
            caller = event.agent_id or "agent"
        else:
            caller = event.role
        content = event.content.strip()
        result = tool.result if tool.result is not None or not content else content
        if isinstance(result, str):
            result = result[:MAX_CONTENT_CHARS]
        gist, failed, noise = summarize_tool_result(result)
        text = f"{caller} called tool {tool.name}"
        arguments = format_tool_arguments(tool.arguments) if isinstance(tool.arguments, dict) else ""
        if arguments:
            text += f" with {arguments}"
        if failed:
            text += f"; failed: {gist}"
        elif gist:
            text += f"; result: {gist}"
        head = text
        if content and not (isinstance(result, str) and content.startswith(result)):
            extra = " ".join(s.text for s in self._select(self._sentences(event, event.speaker_name)))
            if extra:
                text += f" {extra}" if text.endswith(_END_PUNCTUATION) else f". {extra}"
        # keywords from what varies, not from the "called tool ... result" template
        keywords = extract_keywords(" ".join((arguments, gist, text[len(head) :])))
        tool_key = tool.name.lower()
        keywords = [tool_key] + [k for k in keywords if k != tool_key][:7]
        entities = [tool.name] + [e for e in extract_entities(text) if e != tool.name]
        return MemoryUnitDraft(
            text=text,
            kind="procedure",
            keywords=keywords,
            persons=_persons(event, text, known),
            entities=entities,
            event_time=event.timestamp,
            source_event_ids=[event.event_id],
            importance=0.3 if noise and not failed else 0.5,
        )


def _known_names(window: CompressionWindow) -> list[str]:
    names: dict[str, None] = {}
    for event in (*window.context_events, *window.events):
        if event.role in PERSON_ROLES and event.speaker and event.speaker.strip():
            names[event.speaker.strip()] = None
    return list(names)


def _persons(event: Event, text: str, known: list[str]) -> list[str]:
    persons = extract_persons(text, known)
    if event.role in PERSON_ROLES and event.speaker and event.speaker.strip():
        speaker = event.speaker.strip()
        persons = [speaker] + [p for p in persons if p.lower() != speaker.lower()]
    return persons


def create_extractive(**options: Any) -> ExtractiveCompressor:
    """Factory for the registry; unknown options (meant for other backends) are ignored."""
    return ExtractiveCompressor(**options)
