"""Consolidation of an owner's memory units: near-duplicate merge, supersession, abstraction.

Everything is derived from SQL state. A run examines the owner's units that were never
consolidated (merge and supersession only compare those against the rest), then
rebuilds abstractions whose children changed; running it again right after finds
nothing to do. Each step is applied in one transaction that checks nothing it relies on
changed meanwhile (`store.consolidation.apply`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Protocol

import numpy as np

from compressors.text.words import STOPWORDS
from memory_service.domain import MemoryUnit, MemoryUnitDraft, Scope
from memory_service.embedding import Embedder, from_bytes, to_bytes
from stores.sql.consolidation import ProvenanceMerge, UnitClosure
from stores.sql.rows import NewUnit
from stores.sql.store import SqlStore

log = logging.getLogger(__name__)

CONSOLIDATOR = "consolidation"
CONSOLIDATOR_VERSION = "1"

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
_SAID = re.compile(r"^(?P<name>[\w .'-]+?) said: ", re.UNICODE)
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
        and _compatible_duplicates(a, b)
    )


def same_subject(a: MemoryUnit, b: MemoryUnit) -> bool:
    """Shared persons when both name persons, else shared entities."""
    persons_a, persons_b = {p.lower() for p in a.persons}, {p.lower() for p in b.persons}
    if persons_a and persons_b:
        return bool(persons_a & persons_b)
    return bool({e.lower() for e in a.entities} & {e.lower() for e in b.entities})


def _compatible_duplicates(a: MemoryUnit, b: MemoryUnit) -> bool:
    """Similar wording is not enough: a changed number or a different person is news."""
    if set(_NUMBER.findall(a.text)) != set(_NUMBER.findall(b.text)):
        return False
    pa, pb = {p.lower() for p in a.persons}, {p.lower() for p in b.persons}
    if pa and pb and not (pa <= pb or pb <= pa):
        return False
    return bool(_NEGATION.search(a.text)) == bool(_NEGATION.search(b.text))


def _when(unit: MemoryUnit) -> datetime:
    return unit.event_time or unit.valid_from


@dataclass
class ConsolidationReport:
    examined: int = 0
    merged: int = 0
    superseded: int = 0
    abstractions_created: int = 0
    abstractions_retired: int = 0
    merges: list[tuple[int, list[int]]] = field(default_factory=list)
    supersessions: list[tuple[int, int]] = field(default_factory=list)
    judge: dict[str, int] = field(default_factory=dict)  # an LM judge's counters (asked, accepted, ...)


@dataclass
class _Plan:
    claim: list[int] = field(default_factory=list)
    merges: list[ProvenanceMerge] = field(default_factory=list)
    closures: list[UnitClosure] = field(default_factory=list)


class Consolidator:
    def __init__(
        self,
        store: SqlStore,
        embedder: Embedder,
        judge_factory: Callable[[], SupersessionJudge] | None = None,
        duplicate_threshold: float = 0.9,
        restatement_threshold: float = 0.8,
        supersede_threshold: float = 0.45,
        min_cluster: int = 4,
        max_abstraction_words: int = 80,
        max_candidates: int = 20,
    ) -> None:
        self.store = store
        self.embedder = embedder
        # A judge per run: an LM judge's call budget and counters are per run.
        self.judge_factory: Callable[[], SupersessionJudge] = judge_factory or HeuristicJudge
        self.duplicate_threshold = duplicate_threshold
        # Below the duplicate threshold, two units still merge when they state the same
        # attribute of the same subject with the same value ("lives in X" / "home is in X").
        self.restatement_threshold = min(restatement_threshold, duplicate_threshold)
        self.supersede_threshold = supersede_threshold
        self.min_cluster = min_cluster
        self.max_candidates = max_candidates
        self.max_abstraction_words = max_abstraction_words

    async def consolidate(self, owner: Scope) -> ConsolidationReport:
        """Consolidate the units of one owner (tenant + user_id/agent_id, all sessions)."""
        owner = Scope(tenant=owner.tenant, user_id=owner.user_id, agent_id=owner.agent_id)
        report = ConsolidationReport()
        rows = await self.store.consolidation.owner_units(owner)
        first_events = [u.source_event_ids[0] for u, _, _ in rows if u.level == 0]
        said = await self.store.event_timestamps(owner.tenant, first_events)
        judge = self.judge_factory()
        # In a thread: comparing hundreds of units (and an LM judge's calls) must not block the event loop.
        plan = await asyncio.to_thread(self._merge_and_supersede, rows, said, report, judge)
        stats = getattr(judge, "stats", None)
        if stats is not None:
            report.judge = {k: int(v) for k, v in vars(stats).items()}
        if plan.claim:
            await self.store.consolidation.apply(owner.tenant, plan.claim, plan.merges, plan.closures)
        # Abstractions: level 1 from level-0 clusters, then level 2 from level-1 clusters.
        for level in (1, 2):
            units = [u for u, _, _ in await self.store.consolidation.owner_units(owner)]
            closures, drafts = self._abstractions(units, level, owner)
            if not drafts and not closures:
                continue
            vectors = self.embedder.embed([d.draft.text for d in drafts]) if drafts else []
            new_units = [
                NewUnit(
                    draft=d.draft,
                    scope=owner,
                    embedding=to_bytes(v),
                    compressor=CONSOLIDATOR,
                    compressor_version=CONSOLIDATOR_VERSION,
                    level=level,
                    child_unit_ids=tuple(d.children),
                )
                for d, v in zip(drafts, vectors, strict=True)
            ]
            await self.store.consolidation.apply(owner.tenant, [], (), closures, new_units)
            report.abstractions_created += len(new_units)
            report.abstractions_retired += len(closures)
        return report

    def _merge_and_supersede(
        self,
        rows: Sequence[tuple[MemoryUnit, bytes, bool]],
        said: dict[str, datetime],
        report: ConsolidationReport,
        judge: SupersessionJudge,
    ) -> _Plan:
        """`said` maps event ids to when they were said: statements are ordered by that, not
        by the time they talk about ("I moved last month" is newer than "I live in X"
        said three weeks ago, though "last month" is earlier)."""
        plan = _Plan()

        def order(unit: MemoryUnit) -> tuple[datetime, int]:
            return (said.get(unit.source_event_ids[0], _when(unit)), unit.id)

        base = [(u, from_bytes(e)) for u, e, _ in rows if u.level == 0]
        fresh = sorted((u for u, _, done in rows if not done), key=order)
        plan.claim = [u.id for u in fresh]
        report.examined = len(fresh)
        if not base or not fresh:
            return plan
        ids = [u.id for u, _ in base]
        units = {u.id: u for u, _ in base}
        matrix = np.stack([v for _, v in base])
        position = {uid: i for i, uid in enumerate(ids)}
        # 1. Duplicates: every fresh unit joins every compatible unit above the threshold;
        #    each connected group keeps its oldest member, which gets all the provenance.
        parent = {uid: uid for uid in ids}

        def root(uid: int) -> int:
            while parent[uid] != uid:
                parent[uid] = parent[parent[uid]]
                uid = parent[uid]
            return uid

        similarity: dict[int, float] = {}
        for unit in fresh:
            if unit.level != 0:
                continue
            sims = matrix @ matrix[position[unit.id]]
            for j in np.flatnonzero(sims >= self.restatement_threshold):
                other = units[ids[j]]
                if other.id == unit.id:
                    continue
                if (sims[j] >= self.duplicate_threshold and _compatible_duplicates(unit, other)) or restates(unit, other):
                    a, b = root(unit.id), root(other.id)
                    if a != b:
                        older, newer = sorted((units[a], units[b]), key=order)
                        parent[newer.id] = older.id
                        similarity[max(unit.id, other.id)] = float(sims[j])
        groups: dict[int, list[int]] = defaultdict(list)
        for uid in ids:
            if root(uid) != uid:
                groups[root(uid)].append(uid)
        closed: set[int] = set()
        for survivor, duplicates in groups.items():
            duplicates.sort(key=lambda d: order(units[d]))
            for duplicate in duplicates:
                closed.add(duplicate)
                note = {"op": "merged_into", "similarity": round(similarity.get(duplicate, 1.0), 4)}
                plan.closures.append(UnitClosure(duplicate, note, superseded_by=survivor))
            plan.merges.append(
                ProvenanceMerge(
                    survivor,
                    tuple(e for d in duplicates for e in units[d].source_event_ids),
                    {"op": "merged", "from": duplicates},
                )
            )
            report.merges.append((survivor, duplicates))
        # 2. Updates: a fresh unit and its most similar unit it is an update of, or that
        #    updates it (units can arrive out of order), close the older of the two.
        for unit in fresh:
            if unit.level != 0 or unit.id in closed:
                continue
            sims = matrix @ matrix[position[unit.id]]
            # The nearest few are where an update hides; judging hundreds of loosely related units costs time.
            for j in np.argsort(-sims)[: self.max_candidates]:
                if sims[j] < self.supersede_threshold:
                    break
                other = units[ids[j]]
                if other.id == unit.id or other.id in closed:
                    continue
                older, newer = sorted((unit, other), key=order)
                if not judge.supersedes(older, newer, float(sims[j])):
                    continue
                closed.add(older.id)
                note = {"op": "superseded", "by_text": newer.text}
                valid_to = max(_when(newer), older.valid_from)
                plan.closures.append(UnitClosure(older.id, note, valid_to=valid_to, superseded_by=newer.id))
                report.supersessions.append((older.id, newer.id))
                break
        # A survivor may itself be superseded in the same step: merge first, then close.
        report.merged = sum(len(d) for _, d in report.merges)
        report.superseded = len(report.supersessions)
        return plan

    # -- abstraction -----------------------------------------------------------

    def _abstractions(
        self, units: Sequence[MemoryUnit], level: int, owner: Scope
    ) -> tuple[list[UnitClosure], list[_AbstractionDraft]]:
        """Clusters of level-(n-1) units about one person or entity in one period get a level-n unit.

        Level 1 groups by month, level 2 by year. A cluster whose membership changed gets a
        new abstraction and the old one is retired (closed, superseded by the new one).
        """
        children_level = level - 1
        clusters: dict[str, list[MemoryUnit]] = defaultdict(list)
        for unit in units:
            if unit.level != children_level:
                continue
            subject = _subject(unit)
            if subject is None:
                continue
            when = _when(unit)
            period = when.strftime("%Y-%m") if level == 1 else when.strftime("%Y")
            clusters[f"L{level}:{subject}@{period}"].append(unit)
        existing = {u.topic: u for u in units if u.level == level and u.topic}
        closures: list[UnitClosure] = []
        drafts: list[_AbstractionDraft] = []
        for key, members in sorted(clusters.items()):
            old = existing.pop(key, None)
            if len(members) < (self.min_cluster if level == 1 else 2):
                if old is not None:
                    closures.append(UnitClosure(old.id, {"op": "abstraction_retired"}))
                continue
            children = sorted(members, key=lambda u: (_when(u), u.id))
            if old is not None and set(old.child_unit_ids) == {c.id for c in children}:
                continue
            drafts.append(self._abstraction(key, children, level))
            if old is not None:
                closures.append(UnitClosure(old.id, {"op": "abstraction_refreshed"}, replaced_by_new=len(drafts) - 1))
        for stale in existing.values():  # its cluster no longer exists at all
            closures.append(UnitClosure(stale.id, {"op": "abstraction_retired"}))
        return closures, drafts

    def _abstraction(self, key: str, children: list[MemoryUnit], level: int) -> _AbstractionDraft:
        subject = key.split(":", 1)[1].rsplit("@", 1)[0]
        first = _when(children[0])
        period = first.strftime("%B %Y") if level == 1 else first.strftime("%Y")
        budget = self.max_abstraction_words
        # Most important children first when the summary must be cut, then back in time order.
        ranked = sorted(children, key=lambda u: (-u.importance, _when(u), u.id))
        kept: list[MemoryUnit] = []
        words = 0
        for child in ranked:
            clause = _clause(child.text, subject)
            n = len(clause.split())
            if kept and words + n > budget:
                continue
            kept.append(child)
            words += n
        kept.sort(key=lambda u: (_when(u), u.id))
        text = f"{subject} in {period}: " + "; ".join(_clause(c.text, subject) for c in kept) + "."
        draft = MemoryUnitDraft(
            text=text,
            kind="summary",
            keywords=list(dict.fromkeys(k for c in kept for k in c.keywords))[:12],
            persons=list(dict.fromkeys(p for c in children for p in c.persons)),
            entities=list(dict.fromkeys(e for c in children for e in c.entities))[:12],
            topic=key,
            event_time=first,
            source_event_ids=list(dict.fromkeys(e for c in children for e in c.source_event_ids)),
            importance=max(c.importance for c in children),
        )
        return _AbstractionDraft(draft, [c.id for c in children])


@dataclass
class _AbstractionDraft:
    draft: MemoryUnitDraft
    children: list[int]


def _subject(unit: MemoryUnit) -> str | None:
    if unit.persons:
        return unit.persons[0]
    if unit.entities:
        return unit.entities[0]
    return None


def _clause(text: str, subject: str) -> str:
    """A unit's text without its leading subject and final period, to sit in a list."""
    text = text.strip().rstrip(".")
    match = _SAID.match(text)
    if match and match.group("name") == subject:
        return text[match.end():]
    if text.startswith(subject + " "):
        return text[len(subject) + 1 :]
    return text
