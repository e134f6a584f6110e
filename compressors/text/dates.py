"""Rewrite relative time expressions ("yesterday", "last week") into absolute dates.

Dates are computed from the event's own timestamp, so a memory read months later
still says when something happened. Formats: days "7 May 2023", weeks "the week of
1 May 2023" (weeks start on Monday), weekends "the weekend of 6 May 2023" (the
Saturday), months "May 2023", years "2022".

Conventions for the ambiguous cases: "last Friday" is the nearest Friday strictly
before the reference day, "this Friday" the Friday of the reference's week,
"next Friday" the Friday of the following week and "this coming Friday" the
nearest Friday strictly after. "a few" and "several" count as 3 and are written
"around ...". "recently", "the other day" and bare weekdays are left alone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta

from compressors.text.words import MONTH_NAMES, WEEKDAY_NAMES

_MONTH_NAMES = [m.capitalize() for m in MONTH_NAMES]
_WEEKDAYS = {d: i for i, d in enumerate(WEEKDAY_NAMES)}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a couple": 2,
    "couple of": 2, "a few": 3, "few": 3, "several": 3,
}
_APPROXIMATE = frozenset({"a few", "few", "several"})

_COUNT = (
    r"\d{1,3}|a\s+couple(?:\s+of)?|couple\s+of|a\s+few|few|several|an?|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|eleven|twelve"
)
# Every expression contains one of these words; most sentences have none, and this
# check is several times faster than the full pattern.
_TRIGGER = re.compile(r"\b(?:yesterday|today|tomorrow|tonight|last|this|next|coming|upcoming|ago|in|now)\b", re.IGNORECASE)
_RELATIVE = re.compile(
    r"(?=[ytlncuaoeifmsdw0-9])\b(?:"
    r"(?P<dby>(?:the\s+)?day\s+before\s+yesterday)"
    r"|(?P<dat>(?:the\s+)?day\s+after\s+tomorrow)"
    r"|(?P<lastnight>last\s+night)"
    r"|(?P<day>yesterday|today|tomorrow|tonight)(?:\s+(?P<part>morning|afternoon|evening|night))?"
    r"|this\s+(?P<thispart>morning|afternoon|evening)"
    r"|(?P<wrel>last|this\s+past|this\s+coming|this|next|coming|upcoming)\s+"
    r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|(?P<prel>last|this\s+past|this\s+coming|this|next|coming|upcoming)\s+(?P<period>weekend|week|month|year)"
    rf"|(?P<n>{_COUNT})\s+(?P<agounit>day|week|month|year)s?\s+ago"
    rf"|(?P<in>in\s+)?(?P<n2>{_COUNT})\s+(?P<inunit>day|week)s?(?P<fromnow>\s+from\s+now)?"
    r")\b(?!-)",
    re.IGNORECASE,
)
# After these words no preposition is inserted ("since yesterday" -> "since 7 May 2023").
_NO_PREPOSITION = frozenset(
    "on in since until till til by from for of before after than through to at during about around "
    "roughly approximately almost nearly some like as between into within "
    # verbs that take the day as their object ("make tomorrow count", "spend today resting")
    "make makes making spend spending enjoy seize".split()
)
# "in two weeks" is a date only when it looks ahead: not "haven't talked in a few weeks",
# "built it in two days".
_NOT_AHEAD = re.compile(
    r"n['\u2019]t\b|\b(?:not|never|took|built|did|made|finished|completed|learned|learnt|read|wrote)\b", re.IGNORECASE
)
# "walked the trail in two days"; not "scheduled to open in two weeks"
_PAST_VERB_BEFORE = re.compile(
    r"\b(?!(?:excited|scheduled|supposed|planned|expected|booked|thrilled|pumped)\b)[a-z]{2,}ed(?:\s+\w+){0,2}\s*$",
    re.IGNORECASE,
)
_CLAUSE_START = re.compile(r"[.!?;\n]")
# Before these, "last week" means something else ("the last week of June", "every next month").
_NOT_RELATIVE_BEFORE = frozenset(["the", "a", "that", "every", "each", "per", "his", "her", "their", "my", "our", "your", "its", "which"])
_PREV_WORD = re.compile(r"([A-Za-z']+)[\s,]*$")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|[\"(\u201c]\s*)$")
_SUBJECT_AFTER = re.compile(
    r"\s*(?:['\u2019]s\b|(?:is|was|will|has|had|would|seems|seemed|feels|felt|looks|looked|has\s+been)\b)",
    re.IGNORECASE,
)
_POSSESSIVE_AFTER = re.compile(r"['\u2019]s\b")


def format_day(day: date) -> str:
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def format_month(day: date) -> str:
    return f"{_MONTH_NAMES[day.month - 1]} {day.year}"


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _number(raw: str) -> tuple[int, bool]:
    key = " ".join(raw.lower().split())
    if key.isdigit():
        return int(key), False
    return _NUMBERS[key], key in _APPROXIMATE


def _resolve(m: re.Match[str], today: date) -> tuple[str, str, date] | None:
    """(phrase, preposition to insert where needed, start of the period) for one match."""
    g = m.groupdict()
    if g["dby"]:
        return format_day(today - timedelta(days=2)), "on", today - timedelta(days=2)
    if g["dat"]:
        return format_day(today + timedelta(days=2)), "on", today + timedelta(days=2)
    if g["lastnight"]:
        day = today - timedelta(days=1)
        return f"the night of {format_day(day)}", "on", day
    if g["day"]:
        word = g["day"].lower()
        offset = {"yesterday": -1, "today": 0, "tomorrow": 1, "tonight": 0}[word]
        day = today + timedelta(days=offset)
        part = (g["part"] or ("night" if word == "tonight" else "")).lower()
        if part:
            return f"the {part} of {format_day(day)}", "on", day
        return format_day(day), "on", day
    if g["thispart"]:
        return f"the {g['thispart'].lower()} of {format_day(today)}", "on", today
    if g["weekday"]:
        rel = " ".join(g["wrel"].lower().split())
        target = _WEEKDAYS[g["weekday"].lower()]
        if rel in ("last", "this past"):
            day = today - timedelta(days=(today.weekday() - target) % 7 or 7)
        elif rel in ("this coming", "coming", "upcoming"):
            day = today + timedelta(days=(target - today.weekday()) % 7 or 7)
        elif rel == "this":
            day = _week_start(today) + timedelta(days=target)
        else:  # next: the following week
            day = _week_start(today) + timedelta(days=7 + target)
        return format_day(day), "on", day
    if g["period"]:
        rel = " ".join(g["prel"].lower().split())
        step = -1 if rel in ("last", "this past") else 0 if rel == "this" else 1
        period = g["period"].lower()
        if period in ("week", "weekend"):
            monday = _week_start(today) + timedelta(weeks=step)
            if period == "weekend":
                saturday = monday + timedelta(days=5)
                return f"the weekend of {format_day(saturday)}", "", saturday
            return f"the week of {format_day(monday)}", "", monday
        if period == "month":
            first = today.replace(day=1) + relativedelta(months=step)
            return format_month(first), "in", first
        year = date(today.year + step, 1, 1)
        return str(year.year), "in", year
    if g["agounit"]:
        n, approximate = _number(g["n"])
        return _offset(today, -n, g["agounit"].lower(), approximate)
    if g["inunit"]:
        if not g["in"] and not g["fromnow"]:
            return None  # "two days" alone is a duration, not a date
        n, approximate = _number(g["n2"])
        if n == 1 and g["inunit"].lower() == "day" and not g["n2"].isdigit():
            return None  # "Rome wasn't built in a day"
        if g["in"] and not g["fromnow"]:
            clause = _CLAUSE_START.split(m.string[max(0, m.start() - 80) : m.start()])[-1]
            if _NOT_AHEAD.search(clause) or _PAST_VERB_BEFORE.search(clause):
                return None
        phrase, prep, day = _offset(today, n, g["inunit"].lower(), approximate)
        if prep == "" and not approximate and g["in"]:
            prep = "in"  # "leaving in two weeks" -> "leaving in the week of 22 May 2023"
        return phrase, prep, day
    return None


def _offset(today: date, n: int, unit: str, approximate: bool) -> tuple[str, str, date]:
    if unit == "day":
        day = today + timedelta(days=n)
        phrase, prep = format_day(day), "on"
    elif unit == "week":
        day = _week_start(today + timedelta(weeks=n))
        phrase, prep = f"the week of {format_day(day)}", ""
    elif unit == "month":
        day = today.replace(day=1) + relativedelta(months=n)
        phrase, prep = format_month(day), "in"
    else:
        day = date(today.year + n, 1, 1)
        phrase, prep = str(day.year), "in"
    if approximate:
        return f"around {phrase}", "", day
    return phrase, prep, day


def resolve_relative_dates(text: str, reference: datetime) -> tuple[str, datetime | None]:
    """Rewrite relative time expressions as absolute dates counted from `reference`.

    Returns the rewritten text and the start (midnight, in the reference's time
    zone) of the period the first resolved expression names, or None when there
    is none. A preposition is inserted where the sentence needs one ("I went
    yesterday" -> "I went on 7 May 2023") but not after one ("since yesterday")
    nor where the expression is the subject ("Yesterday was fun").
    """
    if not _TRIGGER.search(text):
        return text, None
    today = reference.date()
    first: list[date] = []

    def replace(m: re.Match[str]) -> str:
        before = m.string[max(0, m.start() - 40) : m.start()]
        prev = _PREV_WORD.search(before)
        prev_word = prev.group(1).lower() if prev else ""
        original = m.group(0)
        leading_article = original.lower().startswith("the ")
        if prev_word in _NOT_RELATIVE_BEFORE and not leading_article and not m.group("day"):
            return original
        if m.group("period") and re.match(r"\s+of\b", m.string[m.end() : m.end() + 4]):
            return original  # "last week of June"
        resolved = _resolve(m, today)
        if resolved is None:
            return original
        phrase, prep, day = resolved
        if not first:
            first.append(day)
        after = m.string[m.end() : m.end() + 20]
        at_start = _SENTENCE_START.search(m.string, max(0, m.start() - 8), m.start()) is not None
        if prev_word in ("earlier", "later") and phrase.startswith("the "):
            prep = "in"
        if prep and (
            prev_word in _NO_PREPOSITION
            or _POSSESSIVE_AFTER.match(after)
            or (at_start and _SUBJECT_AFTER.match(after))
        ):
            prep = ""
        if phrase.startswith("around ") and prev_word in _NO_PREPOSITION:
            phrase = phrase[len("around ") :]
        out = f"{prep} {phrase}" if prep else phrase
        if at_start and original[:1].isupper():
            out = out[0].upper() + out[1:]
        return out

    rewritten = _RELATIVE.sub(replace, text)
    if not first:
        return text, None
    return rewritten, datetime.combine(first[0], time(0), tzinfo=reference.tzinfo)
