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
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from memory_service.consolidate import statements as st
from memory_service.consolidate.candidates import Neighbours, neighbours
from memory_service.consolidate.reading import StatementReader
from memory_service.consolidate.rules import HeuristicJudge, SupersessionJudge, compatible_duplicates, restates
from memory_service.domain import MemoryUnit, MemoryUnitDraft, Scope
from memory_service.index.embedding import Embedder, from_bytes, to_bytes
from memory_service.index.sync import IndexSync
from stores.sql.consolidation import ProvenanceMerge, UnitClosure
from stores.sql.rows import NewUnit
from stores.sql.store import SqlStore

log = logging.getLogger(__name__)

_SAID = re.compile(r"^(?P<name>[\w .'-]+?) said: ", re.UNICODE)

CONSOLIDATOR = "consolidation"
CONSOLIDATOR_VERSION = "1"

def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


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
    conflicts: list[tuple[int, int]] = field(default_factory=list)  # (older, newer) marked as contradicting
    judge: dict[str, int] = field(default_factory=dict)  # an LM judge's counters (asked, accepted, ...)
    # candidates (index catch-up + k-NN), merge_supersede (plan and apply), abstractions
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class _Plan:
    claim: list[int] = field(default_factory=list)
    merges: list[ProvenanceMerge] = field(default_factory=list)
    closures: list[UnitClosure] = field(default_factory=list)
    statement_keys: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Stated:
    """Statements of the units a run compares, and the pairs they make: per fresh unit, the
    units that state an attribute of a subject it states (whatever their wording)."""

    of: dict[int, list[st.Statement]] = field(default_factory=dict)
    pairs: dict[int, set[int]] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)

    def cosine(self, a: int, b: int) -> float:
        va, vb = self.vectors.get(a), self.vectors.get(b)
        return float(np.dot(va, vb)) if va is not None and vb is not None else 0.0


class Consolidator:
    def __init__(
        self,
        store: SqlStore,
        embedder: Embedder,
        index_sync: IndexSync,
        judge_factory: Callable[[], SupersessionJudge] | None = None,
        duplicate_threshold: float = 0.9,
        restatement_threshold: float = 0.8,
        supersede_threshold: float = 0.45,
        min_cluster: int = 4,
        max_abstraction_words: int = 80,
        max_candidates: int = 20,
        statement_merge_floor: float = 0.5,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.index_sync = index_sync
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
        # Two units stating the same value of the same attribute of one subject merge only
        # this alike: a long unit that also states it says more, and must stay.
        self.statement_merge_floor = statement_merge_floor
        # Favourite categories are guessed with the embedder; `rebuild.py` reads stored units alike.
        self.reader = StatementReader(embedder)

    async def consolidate(self, owner: Scope) -> ConsolidationReport:
        """Consolidate the units of one owner (tenant + user_id/agent_id, all sessions).

        Work is proportional to the new units, not to the owner's size: the new units are
        read alone, their candidates come from the FAISS index (`candidates.neighbours`),
        and abstractions are rebuilt only for the (subject, month) clusters the new or
        closed units belong to.
        """
        owner = Scope(tenant=owner.tenant, user_id=owner.user_id, agent_id=owner.agent_id)
        report = ConsolidationReport()
        fresh = [(u, from_bytes(e)) for u, e in await self.store.consolidation.fresh_units(owner)]
        if not fresh:
            return report
        started = time.perf_counter()
        # After reading them: the index then holds every new unit and every unit they may meet.
        await self.index_sync.catch_up()
        found = await neighbours(
            self.store, self.index_sync, owner, fresh,
            self.restatement_threshold, self.supersede_threshold, self.max_candidates,
        )
        stated = await self._stated(owner, fresh, found)
        report.timings_ms["candidates"] = _ms_since(started)
        started = time.perf_counter()
        first_events = [u.source_event_ids[0] for u in found.units.values()]
        said = await self.store.event_timestamps(owner.tenant, first_events)
        judge = self.judge_factory()
        # In a thread: an LM judge's calls must not block the event loop.
        plan = await asyncio.to_thread(
            self._merge_and_supersede, [u for u, _ in fresh], found, said, report, judge, stated
        )
        stats = getattr(judge, "stats", None)
        if stats is not None:
            report.judge = {k: int(v) for k, v in vars(stats).items()}
        if plan.claim:
            await self.store.consolidation.apply(
                owner.tenant, plan.claim, plan.merges, plan.closures,
                statements=plan.statement_keys, statements_version=st.STATEMENT_KEYS_VERSION,
            )
        report.timings_ms["merge_supersede"] = _ms_since(started)
        started = time.perf_counter()
        # Abstractions: level 1 from level-0 clusters, then level 2 from level-1 clusters, each
        # for the clusters that gained or lost a member in this run only.
        closed = [found.units[c.unit_id] for c in plan.closures]
        keys = _cluster_keys([*(u for u, _ in fresh), *closed], 1)
        for level in (1, 2):
            if not keys:
                break
            periods = sorted({_period(key) for key in keys})
            subjects = sorted({_key_parts(key)[0] for key in keys})
            units = await self.store.consolidation.cluster_members(owner, periods, subjects, (level - 1, level))
            closures, drafts = self._abstractions(units, level, owner, keys)
            keys = set()
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
            created = await self.store.consolidation.apply(owner.tenant, [], (), closures, new_units)
            report.abstractions_created += len(new_units)
            report.abstractions_retired += len(closures)
            retired = {c.unit_id for c in closures}
            keys = _cluster_keys([*created, *(u for u in units if u.id in retired)], 2)
        report.timings_ms["abstractions"] = _ms_since(started)
        return report

    # -- statements --------------------------------------------------------------

    async def _stated(self, owner: Scope, fresh: list[tuple[MemoryUnit, np.ndarray]], found: Neighbours) -> _Stated:
        """Statements of the fresh level-0 units, and their partners by `subject|attribute` key:
        other fresh units, and the owner's consolidated units recorded under the same keys
        (`store.consolidation.stating`), added to `found.units`."""
        stated = _Stated()
        base = [(u, v) for u, v in fresh if u.level == 0]
        stated.of = await asyncio.to_thread(lambda: {u.id: self.statements(u) for u, _ in base})
        stated.vectors = {u.id: v for u, v in base}
        keys = sorted({k for sts in stated.of.values() for k in st.keys(sts)})
        if not keys:
            return stated
        old = [(u, from_bytes(e)) for u, e in await self.store.consolidation.stating(owner, keys) if u.id not in stated.of]
        old_statements = await asyncio.to_thread(lambda: {u.id: self.statements(u) for u, _ in old})
        by_key: dict[str, set[int]] = defaultdict(set)
        for uid, sts in [*stated.of.items(), *old_statements.items()]:
            for key in st.keys(sts):
                by_key[key].add(uid)
        for u, v in old:
            found.units.setdefault(u.id, u)
            stated.vectors[u.id] = v
        stated.of.update(old_statements)
        for u, _ in base:
            partners = {other for key in st.keys(stated.of[u.id]) for other in by_key[key]} - {u.id}
            if partners:
                stated.pairs[u.id] = partners
        return stated

    def statements(self, unit: MemoryUnit) -> list[st.Statement]:
        """The unit's subject-attribute-value statements (`StatementReader.statements`)."""
        return self.reader.statements(unit)

    def _merge_and_supersede(
        self,
        fresh_units: Sequence[MemoryUnit],
        found: Neighbours,
        said: dict[str, datetime],
        report: ConsolidationReport,
        judge: SupersessionJudge,
        stated: _Stated | None = None,
    ) -> _Plan:
        """`said` maps event ids to when they were said: statements are ordered by that, not
        by the time they talk about ("I moved last month" is newer than "I live in X"
        said three weeks ago, though "last month" is earlier)."""
        plan = _Plan()

        def order(unit: MemoryUnit) -> tuple[datetime, int]:
            return (said.get(unit.source_event_ids[0], _when(unit)), unit.id)

        fresh = sorted(fresh_units, key=order)
        plan.claim = [u.id for u in fresh]
        stated = stated or _Stated()
        plan.statement_keys = [(u.id, key) for u in fresh if u.id in stated.of for key in st.keys(stated.of[u.id])]
        report.examined = len(fresh)
        units = found.units
        if not units or not fresh:
            return plan
        ids = sorted(units, key=lambda uid: (units[uid].valid_from, uid))
        # 1. Duplicates: every fresh unit joins every compatible unit above the threshold;
        #    each connected group keeps its oldest member, which gets all the provenance.
        parent = {uid: uid for uid in ids}

        def root(uid: int) -> int:
            while parent[uid] != uid:
                parent[uid] = parent[parent[uid]]
                uid = parent[uid]
            return uid

        similarity: dict[int, float] = {}

        def apart(a_id: int, b_id: int) -> bool:
            """Alike in wording, yet different in a value both state ("result: @ann" / "result: @bo"),
            or two calls of a tool with other arguments (another subject)."""
            a, b = stated.of.get(a_id), stated.of.get(b_id)
            ta, tb = st.tool_statements(units[a_id].text), st.tool_statements(units[b_id].text)
            if ta and tb and st.keys(ta) != st.keys(tb):
                return True
            return bool(a and b and st.compare(a, b).conflicts)

        def join(a_id: int, b_id: int, sim: float) -> None:
            a, b = root(a_id), root(b_id)
            if a != b:
                older, newer = sorted((units[a], units[b]), key=order)
                parent[newer.id] = older.id
                similarity[max(a_id, b_id)] = sim

        for unit in fresh:
            if unit.level != 0:
                continue
            for other_id, sim in found.near[unit.id]:
                if sim < self.restatement_threshold:
                    break
                other = units[other_id]
                if other.id == unit.id or apart(unit.id, other.id):
                    continue
                if (sim >= self.duplicate_threshold and compatible_duplicates(unit, other)) or restates(unit, other):
                    join(unit.id, other.id, sim)
            # The same value of the same attribute of the same subject, in other words.
            for other_id in sorted(stated.pairs.get(unit.id, ())):
                other = units.get(other_id)
                sim = stated.cosine(unit.id, other_id)
                if other is None or other.level != 0 or sim < self.statement_merge_floor:
                    continue
                if st.compare(stated.of[other_id], stated.of[unit.id]).restates and compatible_duplicates(unit, other, persons=False):
                    join(unit.id, other_id, sim)
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
        # 2. Updates. (a) Statements: a fresh unit and every unit stating another value of an
        #    attribute of a subject it states, in either order: the older is closed, however
        #    far apart their embeddings are.
        def close(older: MemoryUnit, newer: MemoryUnit, how: str) -> None:
            closed.add(older.id)
            note = {"op": "superseded", "by_text": newer.text, "by": how}
            valid_to = max(_when(newer), older.valid_from)
            plan.closures.append(UnitClosure(older.id, note, valid_to=valid_to, superseded_by=newer.id))
            report.supersessions.append((older.id, newer.id))

        contradicted: list[tuple[MemoryUnit, MemoryUnit]] = []
        for unit in fresh:
            for other_id in sorted(stated.pairs.get(unit.id, ())):
                other = units.get(other_id)
                if unit.id in closed or other is None or other.level != 0 or other_id in closed:
                    continue
                older, newer = sorted((unit, other), key=order)
                comparison = st.compare(stated.of[older.id], stated.of[newer.id])
                if comparison.updates:
                    close(older, newer, "statement")
                elif comparison.contradicts and (older, newer) not in contradicted:
                    contradicted.append((older, newer))
        read: dict[int, list[st.Statement]] = {}

        def statements_of(unit: MemoryUnit) -> list[st.Statement]:
            if unit.id in stated.of:
                return stated.of[unit.id]
            if unit.id not in read:
                read[unit.id] = self.statements(unit)
            return read[unit.id]

        # (b) Similarity: a fresh unit and its most similar unit it is an update of, or that
        #    updates it (units can arrive out of order), close the older of the two. Pairs
        #    whose statements share a key were decided by (a).
        for unit in fresh:
            if unit.level != 0 or unit.id in closed:
                continue
            # The nearest few are where an update hides; judging hundreds of loosely related units costs time.
            for other_id, sim in found.near[unit.id][: self.max_candidates]:
                if sim < self.supersede_threshold:
                    break
                other = units[other_id]
                if other.id == unit.id or other.id in closed:
                    continue
                older, newer = sorted((unit, other), key=order)
                if other_id in stated.pairs.get(unit.id, ()) and st.compare(stated.of[older.id], stated.of[newer.id]).shared:
                    continue
                if st.is_tool_unit(older.text) or st.is_tool_unit(newer.text):
                    continue  # a tool call's subject is its arguments: only its statements (a) can tell an update
                if st.other_subjects(statements_of(older), statements_of(newer)):
                    continue  # one thing's setting never updates another's, however alike the sentences
                if not judge.supersedes(older, newer, sim):
                    continue
                close(older, newer, "judge")
                break
        # Contradictions ("I've never used X" / "I used X"): both stay valid, each marked with
        # the other's date, and context packing shows the mark (`packing.display_text`).
        for older, newer in contradicted:
            if older.id in closed or newer.id in closed:
                continue
            for unit, other in ((older, newer), (newer, older)):
                note = {"op": "conflicts_with", "unit": other.id, "said": order(other)[0].isoformat()}
                plan.merges.append(ProvenanceMerge(unit.id, (), note))
            report.conflicts.append((older.id, newer.id))
        # A survivor may itself be superseded in the same step: merge first, then close.
        report.merged = sum(len(d) for _, d in report.merges)
        report.superseded = len(report.supersessions)
        return plan

    # -- abstraction -----------------------------------------------------------

    def _abstractions(
        self, units: Sequence[MemoryUnit], level: int, owner: Scope, keys: set[str]
    ) -> tuple[list[UnitClosure], list[_AbstractionDraft]]:
        """Clusters of level-(n-1) units about one person or entity in one period get a level-n unit.

        Level 1 groups by month, level 2 by year; only the clusters named in `keys` are
        looked at (`units` holds at least all their members and abstractions). A cluster
        whose membership changed gets a new abstraction and the old one is retired
        (closed, superseded by the new one).
        """
        children_level = level - 1
        clusters: dict[str, list[MemoryUnit]] = defaultdict(list)
        for unit in units:
            if unit.level != children_level:
                continue
            key = _cluster_key(unit, level)
            if key in keys:
                clusters[key].append(unit)
        existing = {u.topic: u for u in units if u.level == level and u.topic in keys}
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
        subject = _key_parts(key)[0]
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
            # it states only the children it kept: it cites their events, no more
            source_event_ids=list(dict.fromkeys(e for c in kept for e in c.source_event_ids)),
            importance=max(c.importance for c in children),
        )
        return _AbstractionDraft(draft, [c.id for c in children])


@dataclass
class _AbstractionDraft:
    draft: MemoryUnitDraft
    children: list[int]


def _cluster_key(unit: MemoryUnit, level: int) -> str | None:
    """The level-`level` abstraction cluster a unit one level below belongs to: `L1:subject@YYYY-MM`
    or `L2:subject@YYYY` (None without a subject). It is also the abstraction's `topic`."""
    subject = _subject(unit)
    if subject is None:
        return None
    when = _when(unit)
    return f"L{level}:{subject}@{when.strftime('%Y-%m') if level == 1 else when.strftime('%Y')}"


def _cluster_keys(units: Sequence[MemoryUnit], level: int) -> set[str]:
    return {key for u in units if (key := _cluster_key(u, level)) is not None}


def _key_parts(key: str) -> tuple[str, str]:
    """`L1:Ann@2024-03` -> ("Ann", "2024-03")."""
    subject, period = key.split(":", 1)[1].rsplit("@", 1)
    return subject, period


def _period(key: str) -> tuple[datetime, datetime]:
    """The half-open time span of a cluster key's month (level 1) or year (level 2)."""
    period = _key_parts(key)[1]
    if len(period) == 4:
        year = int(period)
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    year, month = int(period[:4]), int(period[5:7])
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return datetime(year, month, 1, tzinfo=UTC), end


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
