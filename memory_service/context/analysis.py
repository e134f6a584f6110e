"""Query analysis without an LM: time expressions, entity mentions and complexity.

What it produces steers retrieval (see `retrieval.HybridRetriever.retrieve`):
- a time range (half-open, UTC) from expressions like "in 2022", "last May",
  "in May 2023", "on 8 May 2023", "before June 2023", "since 2021", and a temporal
  flag for questions about time ("when did ...", "how long ago ...", "what year ...");
  the range is a ranking signal (units in range form a ranked list of their own and
  get a boost), never a hard filter: a unit's event time may be when something was
  said rather than when it happened.
- entity mentions: capitalised words and runs of them that are not question words,
  looked up in the units' persons/entities (a symbolic ranking) and boosted;
- complexity: multi-hop cues (several entities, comparisons, "both", "why", "how",
  list questions) widen the candidate pool and turn on multi-hop expansion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dateutil.relativedelta import relativedelta

from compressors.text.words import MONTH_NUMBERS, MONTH_PATTERN, STOPWORDS, query_words

MONTHS = MONTH_NUMBERS
_MONTH = rf"({MONTH_PATTERN})"  # matched case-insensitively
_YEAR = r"((?:19|20)\d{2})"

_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+{_YEAR}\b", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+{_YEAR}\b", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\.?,?\s+(?:of\s+)?{_YEAR}\b", re.IGNORECASE)
_ISO_DAY = re.compile(r"\b((?:19|20)\d{2})-(\d{2})-(\d{2})\b")
_RELATIVE_MONTH = re.compile(rf"\b(last|this|next)\s+{_MONTH}\b", re.IGNORECASE)
_RELATIVE_PERIOD = re.compile(r"\b(last|this|next|past)\s+(year|month|week)\b", re.IGNORECASE)
_IN_MONTH = re.compile(rf"\b(?:in|during|of)\s+{_MONTH}\b(?!\s*\d)", re.IGNORECASE)
_YEAR_ONLY = re.compile(rf"\b{_YEAR}\b")
_BEFORE = re.compile(r"\b(before|until|till|prior to|by)\s*$", re.IGNORECASE)
_AFTER = re.compile(r"\b(after|since|from)\s*$", re.IGNORECASE)

_TEMPORAL_CUES = re.compile(
    r"\b(when|what (?:year|month|day|date|time)|which (?:year|month|day|date)|how long|how many (?:years|months|weeks|days)|"
    r"ago|date|since|before|after|first time|last time|recently|earlier|later)\b",
    re.IGNORECASE,
)
_MULTI_HOP_CUES = re.compile(
    r"\b(both|compare|compared|comparison|difference|differ|different|in common|similar|same|share|shared|"
    r"why|how|would|likely|might|could|because|reason|relationship|all|ever|each|together|"
    r"what (?:kinds?|types?|sorts?) of|which .{0,20}s\b|and)\b",
    re.IGNORECASE,
)
_LIST_CUE = re.compile(r"\b(?:what|which)\s+(?:\w+\s+)?\w{3,}(?:ies|[^suia'\u2019]s)\b", re.IGNORECASE)
_CAPITALISED = re.compile(r"\b[A-Z][\w'\u2019-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'\u2019-]*)*")
QUESTION_WORDS = frozenset(
    "what when where who whom whose which why how did do does is are was were has have had can could would "
    "should will shall may might must i i'm i've i'd we you they he she it the a an in on at of for to and or "
    "if whether tell describe list name give".split()
)


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive

    def contains(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)


@dataclass
class QueryAnalysis:
    query: str
    terms: list[str]
    entities: list[str] = field(default_factory=list)
    time_range: TimeRange | None = None
    temporal: bool = False
    multi_hop: bool = False
    complexity: int = 0
    candidates: int = 50
    expand: bool = False


def _utc(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def _month_range(year: int, month: int) -> TimeRange:
    start = _utc(year, month)
    return TimeRange(start, start + relativedelta(months=1))


def _open_range(query: str, at: int, inner: TimeRange) -> TimeRange:
    """'before May 2023' -> (None, start of May); 'since 2021' -> (start of 2021, None)."""
    before = query[:at]
    if _BEFORE.search(before):
        return TimeRange(None, inner.start)
    if _AFTER.search(before):
        return TimeRange(inner.end if before.rstrip().lower().endswith("after") else inner.start, None)
    return inner


def time_range_of(query: str, now: datetime) -> TimeRange | None:
    """The first explicit time expression in the query, as a half-open range (None: none found)."""
    if m := _ISO_DAY.search(query):
        start = _utc(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        return _open_range(query, m.start(), TimeRange(start, start + relativedelta(days=1)))
    for pattern, order in ((_DAY_MONTH_YEAR, "dmy"), (_MONTH_DAY_YEAR, "mdy")):
        if m := pattern.search(query):
            day, month, year = (m.group(1), m.group(2), m.group(3)) if order == "dmy" else (m.group(2), m.group(1), m.group(3))
            try:
                start = _utc(int(year), MONTHS[month.lower()], int(day))
            except ValueError:
                continue
            return _open_range(query, m.start(), TimeRange(start, start + relativedelta(days=1)))
    if m := _MONTH_YEAR.search(query):
        return _open_range(query, m.start(), _month_range(int(m.group(2)), MONTHS[m.group(1).lower()]))
    if m := _RELATIVE_MONTH.search(query):
        which, month = m.group(1).lower(), MONTHS[m.group(2).lower()]
        year = now.year
        if which == "last" and month >= now.month:
            year -= 1
        elif which == "next" and month <= now.month:
            year += 1
        return _open_range(query, m.start(), _month_range(year, month))
    if m := _RELATIVE_PERIOD.search(query):
        which, unit = m.group(1).lower(), m.group(2).lower()
        step = {"year": relativedelta(years=1), "month": relativedelta(months=1), "week": relativedelta(weeks=1)}[unit]
        if unit == "year":
            anchor = _utc(now.year)
        elif unit == "month":
            anchor = _utc(now.year, now.month)
        else:
            day = now.date() - relativedelta(days=now.weekday())
            anchor = _utc(day.year, day.month, day.day)
        if which == "past":
            return TimeRange(now - step, now)
        start = anchor - step if which == "last" else anchor + step if which == "next" else anchor
        return _open_range(query, m.start(), TimeRange(start, start + step))
    if m := _YEAR_ONLY.search(query):
        year = int(m.group(1))
        return _open_range(query, m.start(), TimeRange(_utc(year), _utc(year + 1)))
    if m := _IN_MONTH.search(query):
        month = MONTHS[m.group(1).lower()]
        year = now.year if month <= now.month else now.year - 1
        return _open_range(query, m.start(), _month_range(year, month))
    return None


def entity_mentions(query: str) -> list[str]:
    """Capitalised words and runs of them ("New York", "Bank of America"), question words left out."""
    found: list[str] = []
    for m in _CAPITALISED.finditer(query):
        words = m.group(0).split()
        while words and words[0].lower().strip("'\u2019") in QUESTION_WORDS:
            words = words[1:]
        if not words:
            continue
        name = " ".join(words)
        name = re.sub(r"['\u2019]s$", "", name)
        if name.lower() in MONTHS or name.lower() in STOPWORDS or name.isdigit():
            continue
        if name not in found:
            found.append(name)
    return found


def analyze(query: str, now: datetime | None = None, base_candidates: int = 50) -> QueryAnalysis:
    now = now or datetime.now(UTC)
    terms = [w for w in query_words(query) if w not in STOPWORDS]
    entities = entity_mentions(query)
    time_range = time_range_of(query, now)
    temporal = time_range is not None or bool(_TEMPORAL_CUES.search(query))
    cues = len(_MULTI_HOP_CUES.findall(query)) + (1 if _LIST_CUE.search(query) else 0)
    complexity = cues + max(0, len(entities) - 1) + (1 if len(terms) > 8 else 0)
    multi_hop = complexity >= 1
    return QueryAnalysis(
        query=query,
        terms=terms,
        entities=entities,
        time_range=time_range,
        temporal=temporal,
        multi_hop=multi_hop,
        complexity=complexity,
        candidates=base_candidates * (2 if multi_hop else 1),
        expand=multi_hop,
    )
