"""Answerability: does the memory answer this question, or only talk about its topic?

Relevance (the best cosine) says whether the memory is near the question. Two failures it
cannot see:
- the right topic, the wrong person: "What did Melanie find on her walk?" when it was
  Caroline who found something. The units that match the question's attribute (its content
  words other than the subject) are all about someone else;
- the right neighbourhood, never discussed: "Which ESLint rules did I enforce?" in a project
  chat that never named a rule. The question's distinctive words appear in no candidate.

`assess` (= `decide(features(...))`) reads the retrieved candidates (best fused score first)
and the query analysis, nothing else (no LM, no store call; per-text work is cached):

- **attribute stems**: the query's content stems (stop words, question words, month/weekday
  names and numbers out: the time range handles time) less the subject's name; an irregular
  past form counts as its base ("found" -> find). Each is weighted by its rarity in the best
  `pool` candidates (an IDF over the pool: a stem in few candidates weighs more).
- **attribute coverage**: the weighted share of attribute stems that the best `answer_top`
  candidates contain together.
- **subject**: the query's entity mentions that name a person of the pool's units' `persons`
  (or are short for one: "Mel"). None when the question is in the first person ("my meeting
  with Ashlee" is the asker's) or asks "who" (the named person is not the doer).
- **sentence attribution**: a sentence of a unit is about the persons it names; one naming
  nobody is about the speaker (a leading "X said:", else the unit's first person, which is
  the speaker for the extractive compressor), unless it asks or addresses someone ("What made
  you pick it?"): then it is about the speaker's listener.
- **subject support / other support**: over the best `subject_top` units, the highest weighted
  attribute coverage of one unit's sentences about the subject / about someone else (another
  named person, or the subject's listener: what the subject asks someone about is theirs).

Decision (`AbstentionConfig`), the first that holds:
1. `irrelevant`: the best cosine is below `empty_threshold` and no `cover_top` candidate
   contains every query stem (selective augmentation, as before);
2. `wrong_subject`: `other support - subject support >= subject_margin` and `subject support
   <= subject_max` (the attribute is covered, but about someone else);
3. `uncovered`: the attribute coverage is below `attribute_threshold` (off by default: on the
   dev sets it emptied answerable questions as often as unanswerable ones);
4. else `answerable`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from compressors.text.words import (
    MONTH_NUMBERS,
    STOPWORDS,
    TERM,
    WEEKDAY_ABBREVIATIONS,
    WEEKDAY_NAMES,
    lexical_terms,
    rarity_weights,
    stem_word,
    stem_words,
    stems,
)
from memory_service.context.analysis import QUESTION_WORDS, QueryAnalysis
from memory_service.context.config import AbstentionConfig


class _Unit(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def persons(self) -> list[str]: ...


class _Candidate(Protocol):
    @property
    def unit(self) -> _Unit: ...

    @property
    def dense(self) -> float | None: ...


@dataclass
class Answerability:
    answerable: bool
    reason: str  # "answerable" | "irrelevant" | "wrong_subject" | "uncovered"
    best_relevance: float = -1.0
    covers_query: bool = False
    subjects: list[str] = field(default_factory=list)
    attribute: list[str] = field(default_factory=list)
    attribute_coverage: float = 1.0
    subject_support: float | None = None
    other_support: float | None = None


def best_relevance(candidates: Sequence[_Candidate]) -> float:
    """The highest cosine between the query and a candidate (-1 with no candidates)."""
    return max((c.dense for c in candidates if c.dense is not None), default=-1.0)


_TIME_WORDS = frozenset(MONTH_NUMBERS) | frozenset(WEEKDAY_NAMES) | frozenset(WEEKDAY_ABBREVIATIONS)


def _is_time_word(word: str) -> bool:
    """Month and weekday names and numbers: the time part of a question, which the time range
    handles (a unit writes "8 May 2023" where the question says "last May")."""
    return word in _TIME_WORDS or word.rstrip("sthndr").isdigit()


def query_stems(analysis: QueryAnalysis | None) -> list[str]:
    """The query's content stems, question words out, in order, distinct."""
    if analysis is None:
        return []
    # "Alexis’s" -> "alexis" (the terms keep a word's apostrophe; the stems of unit texts split on it)
    words = [w for t in analysis.terms for w in lexical_terms(t)]
    words = [w for w in words if w not in QUESTION_WORDS and w not in STOPWORDS and not _is_time_word(w)]
    words = [_IRREGULAR.get(w, w) for w in words]
    return list(dict.fromkeys(s for s in stem_words(words) if s))


def covers_query(candidates: Sequence[_Candidate], analysis: QueryAnalysis | None, top: int = 10) -> bool:
    """Whether one of the best candidates contains every content word of the query (stemmed):
    a keyword query ("support group") is far in meaning from a whole sentence yet plainly answered."""
    if analysis is None or not analysis.terms:
        return False
    wanted = set(stem_words(analysis.terms))
    return any(wanted <= stems(c.unit.text) for c in candidates[:top])


# Irregular past forms of common verbs -> the base form, so "find" matches "found" (the Snowball
# stemmer only strips suffixes). General English, not any dataset's wording.
_IRREGULAR = {
    "ate": "eat",
    "eaten": "eat",
    "began": "begin",
    "begun": "begin",
    "bought": "buy",
    "brought": "bring",
    "built": "build",
    "caught": "catch",
    "chose": "choose",
    "chosen": "choose",
    "came": "come",
    "drew": "draw",
    "drawn": "draw",
    "drank": "drink",
    "drunk": "drink",
    "drove": "drive",
    "driven": "drive",
    "fell": "fall",
    "fallen": "fall",
    "felt": "feel",
    "fought": "fight",
    "found": "find",
    "flew": "fly",
    "flown": "fly",
    "forgot": "forget",
    "forgotten": "forget",
    "gave": "give",
    "given": "give",
    "grew": "grow",
    "grown": "grow",
    "heard": "hear",
    "held": "hold",
    "kept": "keep",
    "knew": "know",
    "known": "know",
    "learnt": "learn",
    "left": "leave",
    "lost": "lose",
    "met": "meet",
    "paid": "pay",
    "ran": "run",
    "rode": "ride",
    "ridden": "ride",
    "sang": "sing",
    "sung": "sing",
    "sent": "send",
    "spent": "spend",
    "sold": "sell",
    "taught": "teach",
    "told": "tell",
    "thought": "think",
    "took": "take",
    "taken": "take",
    "understood": "understand",
    "won": "win",
    "wrote": "write",
    "written": "write",
    "wore": "wear",
    "worn": "wear",
    "saw": "see",
    "seen": "see",
    "swam": "swim",
    "swum": "swim",
    "threw": "throw",
    "thrown": "throw",
    "broke": "break",
    "broken": "break",
    "spoke": "speak",
    "spoken": "speak",
    "stole": "steal",
    "stolen": "steal",
    "hid": "hide",
    "hidden": "hide",
    "lent": "lend",
    "led": "lead",
    "read": "read",
    "shot": "shoot",
    "slept": "sleep",
    "stood": "stand",
}


@lru_cache(maxsize=50_000)
def content_stems(text: str) -> frozenset[str]:
    """`stems(text)` plus the base form's stem of each irregular past form in it."""
    extra = {_IRREGULAR[w] for w in lexical_terms(text, limit=500) if w in _IRREGULAR}
    base = stems(text)
    return base | frozenset(stem_words(sorted(extra))) if extra else base


def _name_stems(name: str) -> set[str]:
    return {stem_word(w) for w in lexical_terms(name)}


_SAID = re.compile(r"^\s*([A-Z][\w'\u2019-]*(?: [A-Z][\w'\u2019-]*)*) (?:said|asked|in [^:]{1,40}):")
_ADDRESSED = re.compile(r"\b(?:you|your|yours|yourself|yourselves)\b|\?", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
_WHO = re.compile(r"\s*(?:who|whom|whose)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|myself|we|us|our|ours|ourselves)\b", re.IGNORECASE)
LISTENER = "~"  # prefix of "the listener of X": someone other than X, not named


def _speaker(text: str, persons: Sequence[str]) -> tuple[str | None, str]:
    """The lower-cased first name of who the unit reports (a leading "X said:" or "X in May 2023:",
    else its first person: the extractive compressor lists the speaker first) and the text after
    that "X said:"."""
    if said := _SAID.match(text):
        return next(iter(lexical_terms(said.group(1))), None), text[said.end() :]
    return (next(iter(lexical_terms(persons[0])), None) if persons else None), text


@lru_cache(maxsize=50_000)
def _attributed(text: str, persons: tuple[str, ...]) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    """(about, stems) per sentence. A sentence is about the persons it names; one naming nobody is
    about the speaker, unless it asks or addresses someone ("What made you pick it?"): then it is
    about the speaker's listener (`LISTENER` + speaker)."""
    names = {w for w in (next(iter(lexical_terms(p)), None) for p in persons) if w}
    speaker, body = _speaker(text, persons)
    out: list[tuple[frozenset[str], frozenset[str]]] = []
    for sentence in _SENTENCE.split(body):
        named = frozenset(w for w in TERM.findall(sentence.lower()) if w in names)
        if named:
            about = named
        elif speaker is None:
            about = frozenset()
        elif _ADDRESSED.search(sentence):
            about = frozenset({LISTENER + speaker})
        else:
            about = frozenset({speaker})
        out.append((about, content_stems(sentence)))
    return tuple(out)


def attributed(unit: _Unit) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    return _attributed(unit.text, tuple(unit.persons))


def owners(unit: _Unit) -> set[str]:
    """Who the unit is about: the names its sentences are about (listeners as `LISTENER` + speaker)."""
    return {w for about, _ in attributed(unit) for w in about}


def split_support(unit: _Unit, subject: set[str], single: bool = True) -> tuple[set[str], set[str]]:
    """The unit's stems from sentences about the subject, and from sentences about someone else:
    another named person, or, with a `single` subject, the subject's listener (what the subject
    asks someone about is theirs; with two subjects the listener may be the other one)."""
    mine: set[str] = set()
    theirs: set[str] = set()
    for about, sentence_stems in attributed(unit):
        if about & subject:
            mine |= sentence_stems
        elif any(not a.startswith(LISTENER) for a in about) or (
            single and any(a.startswith(LISTENER) and a[1:] in subject for a in about)
        ):
            theirs |= sentence_stems
    return mine, theirs


def subjects_of(analysis: QueryAnalysis | None, pool: Sequence[_Candidate]) -> list[str]:
    """The query's entity mentions that name a person of the pool's units (each word a word of a
    person's name, or short for one: "Mel" for "Melanie")."""
    if analysis is None or not analysis.entities:
        return []
    known: set[str] = set()
    for c in pool:
        known |= {w for p in c.unit.persons for w in lexical_terms(p)}
    out: list[str] = []
    for entity in analysis.entities:
        words = lexical_terms(entity)
        if words and all(any(_alias(w, k) for k in known) for w in words) and entity not in out:
            out.append(entity)
    return out


def subject_names(subjects: Sequence[str], pool: Sequence[_Candidate]) -> set[str]:
    """The lower-cased first names that stand for the subjects in the pool's units: the name
    itself and the names it is short for or short of ("Mel" and "Melanie"), 3 letters at least."""
    wanted = {w for s in subjects for w in lexical_terms(s)[:1]}
    firsts = {w for c in pool for p in c.unit.persons for w in lexical_terms(p)[:1]}
    return {f for f in firsts for w in wanted if _alias(w, f)} | wanted


def _alias(a: str, b: str) -> bool:
    """The same name, or one short for the other ("mel", "melanie"), 3 letters at least."""
    return a == b or (min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)))


def concerns(unit: _Unit, names: set[str]) -> bool:
    """Whether a sentence of the unit is about one of these lower-cased names (`owners`)."""
    return bool(owners(unit) & names)


def features(
    candidates: Sequence[_Candidate], analysis: QueryAnalysis | None, config: AbstentionConfig
) -> Answerability:
    """Every feature of the decision, the decision left at answerable; `candidates` best fused score first."""
    result = Answerability(
        answerable=True,
        reason="answerable",
        best_relevance=best_relevance(candidates),
        covers_query=covers_query(candidates, analysis, config.cover_top),
    )
    pool = candidates[: config.pool]
    subjects = subjects_of(analysis, pool)
    subject_stems = {s for name in subjects for s in _name_stems(name)}
    attribute = [s for s in query_stems(analysis) if s not in subject_stems]
    result.subjects, result.attribute = subjects, attribute
    if not pool or not attribute:
        return result
    pool_stems = [content_stems(c.unit.text) for c in pool]
    weight = rarity_weights(attribute, pool_stems)
    total = sum(weight.values()) or 1.0

    def coverage(unit_stems: frozenset[str] | set[str]) -> float:
        return sum(w for s, w in weight.items() if s in unit_stems) / total

    result.attribute_coverage = coverage(set().union(*pool_stems[: config.answer_top]))
    # "Who invited Nate?" asks for the doer, and "my meeting with Ashlee" is the asker's: the
    # named person is not the subject then.
    query = analysis.query if analysis else ""
    if subjects and not _WHO.match(query) and not _FIRST_PERSON.search(query):
        names = subject_names(subjects, pool)
        mine_all: list[set[str]] = []
        theirs_all: list[set[str]] = []
        for c in pool[: config.subject_top]:
            mine, theirs = split_support(c.unit, names, len(subjects) == 1)
            mine_all.append(mine)
            theirs_all.append(theirs)
        result.subject_support = max(coverage(m) for m in mine_all)
        result.other_support = max(coverage(t) for t in theirs_all)
    return result


def decide(result: Answerability, config: AbstentionConfig) -> Answerability:
    """Set `answerable` and `reason` from the features (the rules of the module docstring)."""
    if result.best_relevance < config.empty_threshold and not result.covers_query:
        result.answerable, result.reason = False, "irrelevant"
    elif (
        result.subject_support is not None
        and result.other_support is not None
        and result.subject_support <= config.subject_max
        and result.other_support - result.subject_support >= config.subject_margin
    ):
        result.answerable, result.reason = False, "wrong_subject"
    elif result.attribute_coverage < config.attribute_threshold:
        result.answerable, result.reason = False, "uncovered"
    else:
        result.answerable, result.reason = True, "answerable"
    return result


def assess(candidates: Sequence[_Candidate], analysis: QueryAnalysis | None, config: AbstentionConfig) -> Answerability:
    """Features and decision for one question; `candidates` best fused score first."""
    return decide(features(candidates, analysis, config), config)
