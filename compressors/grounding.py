"""Grounding: everything specific a unit states must be supported by the events it cites.

A small LM turns "port 5433" into "5432", invents a surname, shifts a date by a
day or writes a sentence that restates nothing. Each LM unit's names, numbers,
dates and quoted strings are checked against its cited events (plus the speaker
names of the whole window, since naming people is what the prompt asks for).
A unit with a near miss that has exactly one candidate in the source ("5432" when
the source says only "5433") is repaired by copying the source value; anything
else unsupported rejects the unit, and the caller replaces it with the
extractive units of its events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from compressors.text.dates import resolve_relative_dates
from compressors.text.extract import content_words, extract_entities, extract_keywords, extract_persons
from compressors.text.speakers import rewrite_first_person
from compressors.text.words import MONTH_NUMBERS, MONTH_PATTERN, STOPWORDS, WEEKDAY_NAMES
from memory_service.domain import Event, MemoryUnitDraft

_MONTHS = MONTH_NUMBERS
_WEEKDAYS = frozenset(WEEKDAY_NAMES)
_MONTH_RE = MONTH_PATTERN
_DATE = re.compile(
    rf"\b(?P<iso>(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}}))\b"
    rf"|\b(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m1>{_MONTH_RE})\.?(?:,?\s+(?P<y1>\d{{4}}))?\b"
    rf"|\b(?P<m2>{_MONTH_RE})\.?\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y2>\d{{4}}))?"
    rf"|\b(?P<m3>{_MONTH_RE})\.?,?\s+(?P<y3>\d{{4}})\b",
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000, "dozen": 12, "couple": 2, "once": 1, "twice": 2,
}
_WORD = re.compile(r"[\w'\u2019-]+")
_CAPITALISED = re.compile(r"(?<![\w'\u2019-])[A-Z][\w'\u2019-]*")
_QUOTE = re.compile(r"\"([^\"\n]{2,})\"|\u201c([^\u201d\n]{2,})\u201d|`([^`\n]{2,})`")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|[\"(\u201c]\s*)$")
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|I'll|I'd|me|my|mine|myself)\b|\bI\u2019[mvld]")
_POSSESSIVE = re.compile(r"['\u2019]s?$")
# A word's first five letters: a looser match than the Snowball stem ("painted" supports
# "paintings"), which grounding wants; not the same function, so not `words.stem_words`.
STEM = 5
# Words a restatement needs whatever the source says (who did what with which tool).
FRAME_WORDS = frozenset(
    "agent user assistant tool called calls calling said says asked asks told tells replied answered "
    "mentioned shared shares image photo picture result results returned returns ran failed error".split()
)


def _stem(word: str) -> str:
    return word.lower().replace("\u2019", "'")[:STEM]


def _normalize_number(raw: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        raw = raw.replace(",", "")
    if raw.isdigit():
        return str(int(raw))
    return raw.rstrip("0").rstrip(".") if re.fullmatch(r"\d+\.\d+", raw) else raw


def _dates_in(text: str, default_year: int | None = None) -> list[tuple[int | None, int, int | None]]:
    """(year or None, month, day or None) for each absolute date written in `text`."""
    found: list[tuple[int | None, int, int | None]] = []
    for m in _DATE.finditer(text):
        try:
            if m.group("iso"):
                found.append((int(m.group("iy")), int(m.group("im")), int(m.group("id"))))
            elif m.group("m1"):
                y = m.group("y1")
                found.append((int(y) if y else default_year, _MONTHS[m.group("m1").lower().rstrip(".")], int(m.group("d1"))))
            elif m.group("m2"):
                y = m.group("y2")
                found.append((int(y) if y else default_year, _MONTHS[m.group("m2").lower().rstrip(".")], int(m.group("d2"))))
            else:
                found.append((int(m.group("y3")), _MONTHS[m.group("m3").lower().rstrip(".")], None))
        except (KeyError, ValueError):
            continue
    return found


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass
class Evidence:
    """What a set of events supports: its text, words, numbers and dates."""

    text: str
    words: set[str]
    stems: set[str]
    numbers: set[str]
    dates: set[date]
    months: set[tuple[int, int]]
    names: set[str]
    capitalised: set[str]
    timestamps: list[datetime]
    resolved_dates: list[date]

    @classmethod
    def of(cls, events: Sequence[Event], names: Iterable[str] = ()) -> Evidence:
        texts: list[str] = []
        timestamps = [e.timestamp for e in events]
        resolved: list[date] = []
        for event in events:
            full = event.full_text()
            texts.append(full)
            rewritten, when = resolve_relative_dates(event.content, event.timestamp) if event.content else ("", None)
            if rewritten != event.content:
                texts.append(rewritten)
            if when is not None:
                resolved.append(when.date())
            for label in (event.speaker, event.role, event.agent_id, event.user_id, event.tool and event.tool.name):
                if label:
                    texts.append(str(label))
        names = {n.strip().lower() for n in names if n and n.strip()}
        joined = "\n".join(texts)
        words = {w.lower().replace("\u2019", "'") for w in _WORD.findall(joined)}
        undated = _DATE.sub(" ", joined)  # day and month numbers only count inside dates
        numbers = {_normalize_number(n) for n in _NUMBER.findall(undated)}
        for raw in _NUMBER.findall(undated):  # "10:30" also supports "10" and "30"
            numbers.update(_normalize_number(p) for p in re.split(r"[.,:]", raw) if p)
        numbers.update(str(v) for w, v in _NUMBER_WORDS.items() if w in words)
        dates: set[date] = set(resolved)
        months: set[tuple[int, int]] = set()
        for moment in timestamps:
            dates.add(moment.date())
            hour12 = moment.hour % 12 or 12
            # day and month numbers are checked inside date expressions, not as bare numbers
            numbers.update({str(moment.year), f"{moment:%H:%M}", f"{hour12}:{moment:%M}"})
        default_year = timestamps[0].year if timestamps else None
        for y, m, d in _dates_in(joined, default_year):
            if y is None:
                continue
            if d is None:
                months.add((y, m))
            else:
                try:
                    dates.add(date(y, m, d))
                except ValueError:
                    continue
        for day in dates:
            months.add((day.year, day.month))
            numbers.add(str(day.year))
        # candidates for repairing a misspelt name: capitalised words of these events (speakers included)
        capitalised = {w for w in _CAPITALISED.findall(joined) if w.lower() not in STOPWORDS}
        return cls(
            text=" ".join(joined.lower().split()),
            words=words | names | {p for n in names for p in n.split()} | FRAME_WORDS,
            stems={_stem(w) for w in words},
            numbers=numbers,
            dates=dates,
            months=months,
            names=names,
            capitalised={_POSSESSIVE.sub("", c) for c in capitalised},
            timestamps=timestamps,
            resolved_dates=resolved,
        )

    def supports_word(self, word: str) -> bool:
        low = _POSSESSIVE.sub("", word.lower().replace("\u2019", "'"))
        return low in self.words or low in self.names or _stem(low) in self.stems

    def supports_date(self, y: int | None, m: int, d: int | None) -> bool:
        if d is None:
            return (y, m) in self.months if y is not None else any(mm == m for _, mm in self.months)
        if y is None:
            return any(day.month == m and day.day == d for day in self.dates)
        try:
            return date(y, m, d) in self.dates
        except ValueError:
            return False


@dataclass
class Verdict:
    draft: MemoryUnitDraft | None  # None: rejected
    repaired: bool = False
    problems: list[str] = field(default_factory=list)


def _unique_close(value: str, candidates: Iterable[str], max_distance: int) -> str | None:
    close = {c for c in candidates if c != value and len(c) == len(value) and edit_distance(c, value) <= max_distance}
    return close.pop() if len(close) == 1 else None


def _check_numbers(text: str, evidence: Evidence, problems: list[str]) -> str:
    date_spans = [m.span() for m in _DATE.finditer(text)]
    out = text
    for m in reversed(list(_NUMBER.finditer(text))):
        if any(s <= m.start() < e for s, e in date_spans):
            continue  # checked as a date
        raw = m.group(0)
        if _normalize_number(raw) in evidence.numbers or raw in evidence.numbers:
            continue
        fix = _unique_close(raw, (n for n in evidence.numbers if n.replace(".", "").replace(":", "").isdigit()), 1)
        if fix is None:
            problems.append(f"number {raw} is not in the source")
            continue
        out = out[: m.start()] + fix + out[m.end() :]
    return out


def _check_dates(text: str, evidence: Evidence, problems: list[str]) -> None:
    for y, m, d in _dates_in(text):
        if not evidence.supports_date(y, m, d):
            shown = f"{y or '?'}-{m:02d}" + (f"-{d:02d}" if d else "")
            problems.append(f"date {shown} is not in the source")


def _check_names(text: str, evidence: Evidence, problems: list[str]) -> str:
    out = text
    for m in reversed(list(_CAPITALISED.finditer(text))):
        word = _POSSESSIVE.sub("", m.group(0))
        low = word.lower().replace("\u2019", "'")
        if len(low) < 2 or low in STOPWORDS or low.split("'")[0] in STOPWORDS or low in _MONTHS or low in _WEEKDAYS:
            continue  # common words, "I'm", "Don't", months and weekdays
        if low in evidence.words or low in evidence.names:
            continue
        fix = None
        if len(word) >= 4:  # a misspelt name: "Carolyn" for "Caroline"
            close = {c for c in evidence.capitalised if c[:1] == word[:1] and edit_distance(c.lower(), low) <= 2}
            fix = close.pop() if len(close) == 1 else None
        if fix is not None:
            out = out[: m.start()] + fix + out[m.start() + len(word) :]
            continue
        # a capitalised first word is usually no name: "Attending ..." is fine if "attended" is in the source
        if _SENTENCE_START.search(text, max(0, m.start() - 4), m.start()) and evidence.supports_word(low):
            continue
        problems.append(f"name {word!r} is not in the source")
    return out


def _check_quotes(text: str, evidence: Evidence, problems: list[str]) -> None:
    for m in _QUOTE.finditer(text):
        quoted = " ".join(next(g for g in m.groups() if g).lower().split())
        if quoted not in evidence.text:
            problems.append(f"quote {quoted[:40]!r} is not in the source")


def _check_substance(text: str, evidence: Evidence, problems: list[str]) -> None:
    """The unit must restate something: most of its content words come from the source."""
    words = [w for w in content_words(text) if not w.isdigit() and w not in evidence.names]
    if not words:
        problems.append("the text restates nothing from the source")
        return
    supported = sum(1 for w in words if evidence.supports_word(w))
    if supported == 0 or supported < 0.5 * len(words):
        problems.append(f"only {supported} of {len(words)} content words are in the source")


def _single_speaker(events: Sequence[Event]) -> str | None:
    speakers = {e.speaker.strip() for e in events if e.role in ("user", "assistant") and e.speaker and e.speaker.strip()}
    return speakers.pop() if len(speakers) == 1 else None


def _tidy_fields(draft: MemoryUnitDraft, evidence: Evidence, cited: Sequence[Event], known_names: Sequence[str]) -> None:
    """Keep only supported persons/entities/location; fill missing fields from the text; fix event_time."""
    persons = [p for p in draft.persons if all(evidence.supports_word(w) for w in p.split())]
    draft.persons = list(dict.fromkeys(persons or extract_persons(draft.text, known_names)))
    entities = [e for e in draft.entities if " ".join(e.lower().split()) in evidence.text]
    draft.entities = list(dict.fromkeys(entities or extract_entities(draft.text)))
    keywords = [k for k in draft.keywords if all(evidence.supports_word(w) for w in k.split())]
    draft.keywords = list(dict.fromkeys(k.lower() for k in (keywords or extract_keywords(draft.text))))
    if draft.location and " ".join(draft.location.lower().split()) not in evidence.text:
        draft.location = None
    when = draft.event_time
    if when is not None and when.date() not in evidence.dates:
        when = None
    if when is None:
        stated = [
            date(y, m, d)
            for y, m, d in _dates_in(draft.text, cited[0].timestamp.year if cited else None)
            if y is not None and d is not None and evidence.supports_date(y, m, d)
        ]
        day = stated[0] if stated else (evidence.resolved_dates[0] if evidence.resolved_dates else None)
        when = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else (cited[0].timestamp if cited else None)
    draft.event_time = when


def restated_events(text: str, cited: Sequence[Event], names: Sequence[str]) -> list[Event]:
    """The cited events the text actually draws on: each must share a content word or a number with it."""
    lowered = {n.lower() for n in names}
    undated = _DATE.sub(" ", text)  # every event has a date: dates tell nothing about which one is restated
    words = {_stem(w) for w in content_words(undated) if w not in lowered and not w.isdigit()}
    numbers = {_normalize_number(n) for n in _NUMBER.findall(undated)}
    kept = []
    for event in cited:
        evidence = Evidence.of([event])
        if words & evidence.stems or numbers & evidence.numbers:
            kept.append(event)
    return kept or list(cited)


# Share of an event's content words (by stem) a text must hold to stand in for the event.
CARRIED_SHARE = 0.7


def carried_events(text: str, cited: Sequence[Event], share: float = CARRIED_SHARE) -> list[Event]:
    """The cited events whose content `text` carries: at least `share` of each one's content words.

    Grounding asks whether what a text says is supported; this asks the converse, whether
    the text says what the event said. A grounded note that restates one detail of three
    turns cites all three, and without this check it replaced their extractive units
    and lost the rest of their content (LoCoMo conv-30 content recall 0.737 -> 0.638 when
    prompt 4 got SmolLM2's notes accepted more often)."""
    said = {_stem(w) for w in content_words(text)}
    carried = []
    for event in cited:
        own = {_stem(w) for w in content_words(event.full_text())}
        if len(own & said) >= share * len(own):
            carried.append(event)
    return carried


def ground(draft: MemoryUnitDraft, window_events: Sequence[Event], window_names: Sequence[str]) -> Verdict:
    """Check (and where possible repair) one LM draft against the events it cites."""
    by_id = {e.event_id: e for e in window_events}
    cited = [by_id[i] for i in draft.source_event_ids if i in by_id]
    if not cited:
        return Verdict(None, problems=["cites no event of the window"])
    evidence = Evidence.of(cited, window_names)
    problems: list[str] = []
    text = draft.text
    if _FIRST_PERSON.search(text) and not _QUOTE.search(text):
        speaker = _single_speaker(cited)
        if speaker:
            text = rewrite_first_person(text, speaker)[0]
        if _FIRST_PERSON.search(text):
            problems.append("first person with no single speaker to name")
    _check_quotes(text, evidence, problems)
    _check_dates(text, evidence, problems)
    text = _check_numbers(text, evidence, problems)
    text = _check_names(text, evidence, problems)
    _check_substance(text, evidence, problems)
    if problems:
        return Verdict(None, problems=problems)
    grounded = draft.model_copy(deep=True)
    repaired = text != draft.text
    grounded.text = text
    if len(cited) > 1:  # provenance: only the events the text restates
        cited = restated_events(text, cited, window_names)
        grounded.source_event_ids = [e.event_id for e in cited]
        evidence = Evidence.of(cited, window_names)
    _tidy_fields(grounded, evidence, cited, window_names)
    return Verdict(grounded, repaired=repaired)
