"""The heuristic supersession judge and the rules consolidation reads text with.

Sure only when both units state the same attribute of the same subject ("lives in",
"works at", "port"): it compares the values itself. An update phrased any other way
is left to the LM judge (`memory_service.consolidate.lm_judge`), when there is one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

from compressors.text.words import STOPWORDS
from memory_service.domain import MemoryUnit

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NEGATION = re.compile(r"\b(?:not|never|no longer|n't|doesn't|don't|didn't|isn't|wasn't|stopped)\b", re.IGNORECASE)
# Only unambiguous cues: "now", "new", "changed" are everywhere in conversation.
_UPDATE_CUE = re.compile(
    r"\b(?:moved (?:to|out|away)|relocated|no longer|any ?more|switched to|quit|used to|broke up|divorced|"
    r"sold (?:his|her|their|my|the)|replaced|upgraded to|downgraded to)\b",
    re.IGNORECASE,
)
# Phrases that name an attribute with one current value: two statements of the same
# attribute about the same subject with different values are an update.
_ATTRIBUTES = {
    "residence": r"\b(?:lives? in|living in|moved to|relocated to|moving to|home is in|based in)\b",
    "job": r"\b(?:works? (?:at|for|as)|working (?:at|for|as)|job (?:at|as)|employed (?:at|by)|hired (?:at|by|as)|position as)\b",
    "relationship": r"\b(?:is dating|married to|engaged to|(?:boy|girl)friend is|partner is)\b",
    "favorite": r"\bfavou?rite \w+",
    "setting": r"\b(?:port|version|timeout|endpoint|url|path|region|password|email|phone number)\b",
}
_ATTRIBUTE_PATTERNS = {name: re.compile(p, re.IGNORECASE) for name, p in _ATTRIBUTES.items()}
_CONTENT_WORD = re.compile(r"\b[a-z]{4,}\b")
_WORD = re.compile(r"[\w'\u2019-]+")
_CLAUSE_END = re.compile(r"[,.;!?]|\s(?:and|but|because|while|so)\s")
_AUXILIARIES = frozenset(["do", "does", "did", "is", "was", "are", "were", "has", "have", "had", "any", "more"])
# Words that say when or how sure, not what: "lives in Boston these days" = "lives in Boston".
_NOT_VALUES = frozenset(["now", "these", "days", "currently", "still", "really", "actually", "again", "there", "today"])


class SupersessionJudge(Protocol):
    """Decides whether `new` updates or contradicts `old` (same subject, same attribute)."""

    def supersedes(self, old: MemoryUnit, new: MemoryUnit, similarity: float) -> bool: ...


class HeuristicJudge:
    """No LM. The newer unit must share a subject (person or entity) with the older one and
    either state the same attribute ("lives in", "works at", "favorite X", "port") with a
    different value, or, nearly the same sentence otherwise (cosine >= `close_similarity`),
    flip a negation or carry an unambiguous update cue ("no longer", "moved to", "quit").

    Tuned to be conservative: on LoCoMo conversations looser cues ("now", "changed") and
    negation at cosine 0.6 closed hundreds of facts that were merely related.
    """

    def __init__(self, close_similarity: float = 0.8) -> None:
        self.close_similarity = close_similarity

    def supersedes(self, old: MemoryUnit, new: MemoryUnit, similarity: float) -> bool:
        if not same_subject(old, new):
            return False
        statements = attribute_statements(old.text, new.text)
        if statements:
            # The same attribute of the same subject: a new value is an update, the same a restatement.
            return any(not (a <= b or b <= a) for a, b in statements)
        if _states_attribute(old.text) and _states_attribute(new.text):
            return False  # both state attributes, but not the same one of the same subject
        if similarity < self.close_similarity:
            return False
        if bool(_NEGATION.search(old.text)) != bool(_NEGATION.search(new.text)):
            # A contradiction only if the negation is the only difference.
            return _stems(old.text) == _stems(new.text)
        names = {n.lower() for n in [*old.persons, *new.persons]}
        shared = set(_CONTENT_WORD.findall(old.text.lower())) & set(_CONTENT_WORD.findall(new.text.lower())) - names
        return bool(_UPDATE_CUE.search(new.text)) and bool(shared)


def _stems(text: str) -> set[str]:
    words = {w.lower().removesuffix("'s") for w in _WORD.findall(_NEGATION.sub(" ", text))} - _AUXILIARIES
    stems = {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words}
    return stems - STOPWORDS - _NOT_VALUES


def _states_attribute(text: str) -> bool:
    return bool(_attributes(text))


def _words(text: str) -> set[str]:
    words = {w.lower().removesuffix("'s").removesuffix("\u2019s") for w in _WORD.findall(text)}
    return words - STOPWORDS - _NOT_VALUES


def attribute_statements(a: str, b: str) -> list[tuple[set[str], set[str]]]:
    """For each attribute both texts state about the same subject words: (value in a, value in b).

    The subject is what precedes the attribute phrase ("The billing service" listens on
    port ...), the value what follows it up to the end of the clause.
    """
    out = []
    found_b = _attributes(b)
    for name, (phrase_a, subject_a, value_a) in _attributes(a).items():
        if name not in found_b:
            continue
        phrase_b, subject_b, value_b = found_b[name]
        if (name == "favorite" and phrase_a != phrase_b) or subject_a != subject_b:
            continue
        out.append((value_a, value_b))
    return out


@lru_cache(maxsize=65_536)
def _attributes(text: str) -> dict[str, tuple[str, frozenset[str], frozenset[str]]]:
    """Attribute name -> (phrase, subject words before it, value words after it in its clause)."""
    found = {}
    for name, pattern in _ATTRIBUTE_PATTERNS.items():
        match = pattern.search(text)
        if match:
            subject = frozenset(_words(text[: match.start()]))
            value = frozenset(_words(_CLAUSE_END.split(text[match.end() :], maxsplit=1)[0]))
            found[name] = (match.group(0).lower(), subject, value)
    return found


def restates(a: MemoryUnit, b: MemoryUnit) -> bool:
    """Both state the same attribute of the same subject with the same value."""
    statements = attribute_statements(a.text, b.text)
    return (
        bool(statements)
        and same_subject(a, b)
        and all(va <= vb or vb <= va for va, vb in statements)
        and compatible_duplicates(a, b)
    )


def same_subject(a: MemoryUnit, b: MemoryUnit) -> bool:
    """Shared persons when both name persons, else shared entities."""
    persons_a, persons_b = {p.lower() for p in a.persons}, {p.lower() for p in b.persons}
    if persons_a and persons_b:
        return bool(persons_a & persons_b)
    return bool({e.lower() for e in a.entities} & {e.lower() for e in b.entities})


def compatible_duplicates(a: MemoryUnit, b: MemoryUnit, persons: bool = True) -> bool:
    """Similar wording is not enough: a changed number or a different person is news.

    `persons=False` where the statements already matched the subject: "Sam said: Wes works at X"
    lists Sam, not Wes, among its persons."""
    if set(_NUMBER.findall(a.text)) != set(_NUMBER.findall(b.text)):
        return False
    pa, pb = {p.lower() for p in a.persons}, {p.lower() for p in b.persons}
    if persons and pa and pb and not (pa <= pb or pb <= pa):
        return False
    return bool(_NEGATION.search(a.text)) == bool(_NEGATION.search(b.text))
