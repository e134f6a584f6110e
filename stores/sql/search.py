"""Candidate lookups for retrieval: lexical (full-text) search and the symbolic lookups of query analysis.

All are tenant- and scope-filtered and return unit ids; the retriever fuses them with the
vector candidates, which `unit_ids_in_scope` (what a query scope may see) filters.
Lexical search ranks with the database's own full-text index (SQLite FTS5 or a
PostgreSQL tsvector); the symbolic lookups (a time range, a mentioned name, the
timeline) are plain filters on the unit columns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from compressors.text.words import lexical_terms
from memory_service.domain import Scope, as_utc
from stores.sql.engine import session_factory
from stores.sql.rows import chunks
from stores.sql.scoping import in_scope, valid_at
from stores.sql.tables import MemoryUnitRow, UtcDateTime

# SQLite's FTS5 joined to the units it indexes. CROSS JOIN makes FTS5 the outer loop: with a
# plain JOIN the planner may walk a tenant index and probe FTS5 once per unit (130 s for one
# name at 10^5 units; tests/integration/test_sql_store.py checks the plan).
_FTS_UNITS = "memory_units_fts CROSS JOIN memory_units u ON u.id = memory_units_fts.rowid"


class UnitSearch:
    # Postings a lexical query may rank: past it, its most common terms are left out (`affordable_terms`):
    # 3.5-5 us a posting (FTS5, PostgreSQL), so about 15-20 ms.
    max_postings = 4_000
    # When even the rarest term is past `max_postings`, the newest this many of its matches in the scope are ranked.
    newest_postings = 1_000

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = session_factory(engine)
        self._pg_frequencies: tuple[float, dict[str, float], float] | None = None  # (read at, lexeme -> share, rows)

    async def lexical(
        self, scope: Scope, terms: Sequence[str], k: int, include_closed: bool = False,
        scope_units: int | None = None,
    ) -> list[tuple[int, float]]:
        """Full-text search over the scope's units: (unit id, score), best first.

        `terms` are the words to look for, already split (`compressors.text.words.lexical_terms`).
        Only currently valid units unless `include_closed` (the caller then filters by
        validity at its own time). SQLite uses FTS5's BM25; PostgreSQL uses ts_rank_cd
        over a generated tsvector. Terms are OR-ed so a unit matching any query word is a
        candidate. `scope_units`, the scope's size where the caller knows it, lets PostgreSQL
        bound a very common term's scan (`_recent_span`).
        """
        terms, postings = await self._affordable(terms)
        if not terms:
            return []
        where, params = _scope_where(scope, None, any_validity=include_closed)
        params["k"] = k
        # Even the rarest term is past the budget: rank only its newest `newest_postings` matches
        # in the scope, so the cost stays bounded however common the words are.
        newest_only = postings > self.max_postings
        params["cap"] = self.newest_postings
        if self.dialect == "sqlite":
            params["q"] = " OR ".join(_fts_phrase(t) for t in terms)
            matching = f"{_FTS_UNITS} WHERE memory_units_fts MATCH :q AND {' AND '.join(where)}"
            floor = ""
            if newest_only:  # FTS5 walks its rowids newest first and stops at the cap
                floor = (f" AND memory_units_fts.rowid >= coalesce((SELECT u.id FROM {matching} "
                         "ORDER BY memory_units_fts.rowid DESC LIMIT 1 OFFSET :cap - 1), 0)")
            sql = (
                f"SELECT u.id, -bm25(memory_units_fts) AS score FROM {matching}{floor} "
                "ORDER BY bm25(memory_units_fts), u.id DESC LIMIT :k"
            )
        else:
            params["q"] = " or ".join(terms)
            matching = (
                "FROM memory_units u, websearch_to_tsquery('english', :q) q "
                f"WHERE u.search_tsv @@ q AND {' AND '.join(where)}"
            )
            if not newest_only:
                sql = f"SELECT u.id, ts_rank_cd(u.search_tsv, q) AS score {matching} ORDER BY score DESC, u.id DESC LIMIT :k"
            else:  # ts_rank_cd, most of the cost of a posting, runs on the newest `cap` only
                newest = (
                    "SELECT n.id, ts_rank_cd(n.search_tsv, n.q) AS score FROM "
                    "(SELECT u.id, u.search_tsv, q {matching} ORDER BY u.id DESC LIMIT :cap) n "
                    "ORDER BY score DESC, n.id DESC LIMIT :k"
                )
                span = await self._recent_span(postings, scope_units)
                if span is not None:
                    recent = matching + " AND u.id >= (SELECT max(id) FROM memory_units) - :span"
                    found = await self._scored(newest.format(matching=recent), {**params, "span": span})
                    if len(found) >= k:
                        return found
                sql = newest.format(matching=matching)  # no span, or too few matches inside it
        return await self._scored(sql, params)

    async def _scored(self, sql: str, params: dict[str, Any]) -> list[tuple[int, float]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(sql), params)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    async def _recent_span(self, postings: int, scope_units: int | None) -> int | None:
        """How far back from the newest id the scope's newest `newest_postings` matches should lie, or
        None when that is (nearly) the whole table.

        PostgreSQL finds a term's matches with a bitmap of the GIN index and then visits every
        one of them in the heap to check the scope and sort by id: about 4 us a match, 0.2 s
        for a name in 5% of 10^6 units, however few are ranked. A range on the primary key
        ANDed into that bitmap visits only the recent ones. With matches spread evenly over
        ids (`postings` of the table's rows, `scope_units` of them in the scope), the newest
        `newest_postings` in the scope lie within `newest_postings * rows^2 / (postings * scope_units)`
        ids; twice that is asked for, and the caller runs the unbounded query when it finds
        fewer than it wants (a scope whose units are mostly old).
        """
        if scope_units is None or postings <= 0 or scope_units <= 0:
            return None
        _, rows = await self._pg_lexeme_shares()
        if rows <= 0:
            return None
        span = 2 * self.newest_postings * rows * rows / (postings * scope_units)
        return int(span) if span < rows else None

    async def affordable_terms(self, terms: Sequence[str]) -> list[str]:
        """`terms` without the most common ones once the rest already match `max_postings` units.

        Neither FTS5's bm25 nor ts_rank_cd can stop early: an OR query scores every unit
        any term matches, so its cost grows with the index (0.1-0.6 s at 10^5 units for a
        few common words). A term in that many units adds little to BM25 (its IDF is low)
        and the rarer terms already fill the top k, so the commonest terms go first, the
        rarest one always stays, and order is kept. Frequencies are counted over the whole
        table (FTS5), or read from PostgreSQL's planner statistics of the tsvector
        (`pg_stats.most_common_elems`, refreshed by ANALYZE).
        """
        return (await self._affordable(terms))[0]

    async def _affordable(self, terms: Sequence[str]) -> tuple[list[str], int]:
        """`affordable_terms`, with the postings the kept terms match (an estimate on PostgreSQL)."""
        terms = list(dict.fromkeys(terms))
        if not terms:
            return [], 0
        frequency = await self._document_frequencies(terms)
        if sum(frequency.values()) <= self.max_postings:
            return terms, sum(frequency.values())
        kept: set[str] = set()
        total = 0
        for term in sorted(terms, key=lambda t: frequency.get(t, 0)):
            if kept and total + frequency.get(term, 0) > self.max_postings:
                break
            kept.add(term)
            total += frequency.get(term, 0)
        return [t for t in terms if t in kept], total

    async def _document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """Units each term matches (SQLite, exact), or its estimate (PostgreSQL; 0 when under the statistics' floor)."""
        if self.dialect == "sqlite":
            params = {f"t{i}": _fts_phrase(t) for i, t in enumerate(terms)}
            counts = ", ".join(
                f"(SELECT count(*) FROM memory_units_fts WHERE memory_units_fts MATCH :{key})" for key in params
            )
            async with self.engine.connect() as conn:
                row = (await conn.execute(text(f"SELECT {counts}"), params)).one()
            return {t: int(c) for t, c in zip(terms, row, strict=True)}
        shares, rows = await self._pg_lexeme_shares()
        if not shares:
            return {}
        params = {f"t{i}": t for i, t in enumerate(terms)}
        lexemes = " UNION ALL ".join(
            f"SELECT {i}, unnest(tsvector_to_array(to_tsvector('english', :t{i})))" for i in range(len(terms))
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(text(lexemes), params)).all()
        out: dict[str, int] = {}
        for i, lexeme in found:
            out[terms[i]] = max(out.get(terms[i], 0), int(shares.get(lexeme, 0.0) * rows))
        return out

    async def _pg_lexeme_shares(self) -> tuple[dict[str, float], float]:
        """PostgreSQL's most common lexemes of `search_tsv` with the share of rows holding each, and the
        table's row estimate; re-read every 10 minutes."""
        now = time.monotonic()
        if self._pg_frequencies is not None and now - self._pg_frequencies[0] < 600:
            return self._pg_frequencies[1], self._pg_frequencies[2]
        sql = (
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
            "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
            "WHERE s.tablename = 'memory_units' AND s.attname = 'search_tsv' AND s.schemaname = current_schema()"
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(sql))).first()
        shares: dict[str, float] = {}
        rows = 0.0
        if row is not None and row[0] is not None:
            shares = dict(zip(row[0], row[1], strict=False))  # the frequencies end with 3 summary values
            rows = float(row[2] or 0.0)
        self._pg_frequencies = (now, shares, rows)
        return shares, rows

    async def unit_ids_in_scope(self, scope: Scope, as_of: datetime | None = None) -> list[int]:
        """Ids of the units a query scope may see: valid now, or valid at `as_of`."""
        stmt = valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        async with self._sessions() as session:
            return list(await session.scalars(stmt))

    # -- symbolic lookups for query analysis (tenant + scope filtered) ---------

    async def unit_ids_in_time_range(
        self,
        scope: Scope,
        start: datetime | None,
        end: datetime | None,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[int]:
        """Visible units whose event time (or, lacking one, valid_from) is in [start, end): the
        latest `limit` of them by that time (all when None). Indexes on (tenant, that time)
        and (tenant, user_id, that time), migrations 0008 and 0010, make it a range scan."""
        when = event_when(MemoryUnitRow)
        stmt = valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        if start is not None:
            stmt = stmt.where(when >= start)
        if end is not None:
            stmt = stmt.where(when < end)
        if limit is not None:
            stmt = stmt.order_by(when.desc()).limit(limit)
        async with self._sessions() as session:
            return list(await session.scalars(stmt))

    async def unit_ids_mentioning(
        self, scope: Scope, names: Sequence[str], as_of: datetime | None = None, limit: int | None = None
    ) -> list[int]:
        """Visible units whose persons or entities include one of `names` (case-insensitive), newest
        first, at most `limit` (all when None).

        A full-text index finds the candidates: on PostgreSQL the units whose listed names
        hold a name's words (`names_tsv`, 0009), on SQLite those whose search text holds the
        name as a phrase (the search text carries every person and entity). The exact check
        on their lists, the order and the cap run in SQL, so a name that many texts mention
        but few units list costs no row in Python (at 3x10^5 units, decoding those rows'
        lists in Python took most of a tenant-wide query). A name the index has no words for
        (punctuation only) is checked by a scan of the scope's units.
        """
        wanted = sorted({n.strip().lower() for n in names if n.strip()})
        if not wanted:
            return []
        indexable, unindexable = await self._split_indexable(wanted)
        found: set[int] = set()
        for group, through_index in ((indexable, True), (unindexable, False)):
            if group:
                found.update(await self._mention_ids(scope, group, as_of, limit, through_index))
        ordered = sorted(found, reverse=True)
        return ordered if limit is None else ordered[:limit]

    async def _split_indexable(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Names the full-text index can find, and names it cannot (no word it indexes)."""
        if self.dialect == "sqlite":  # FTS5 (unicode61) indexes every word
            words = [bool(lexical_terms(n)) for n in names]
            return [n for n, w in zip(names, words, strict=True) if w], [n for n, w in zip(names, words, strict=True) if not w]
        params = {f"n{i}": name for i, name in enumerate(names)}
        columns = ", ".join(f"numnode(plainto_tsquery('simple', :{key}))" for key in params)
        async with self.engine.connect() as conn:
            nodes = (await conn.execute(text(f"SELECT {columns}"), params)).one()
        return [n for n, c in zip(names, nodes, strict=True) if c], [n for n, c in zip(names, nodes, strict=True) if not c]

    async def _mention_ids(
        self, scope: Scope, names: list[str], as_of: datetime | None, limit: int | None, through_index: bool
    ) -> list[int]:
        """Ids of visible units listing one of `names` (lower case), newest first: candidates from
        the full-text index (as a phrase on SQLite) when `through_index`, else every unit of the scope."""
        where, params = _scope_where(scope, as_of)
        params.update({f"n{i}": name for i, name in enumerate(names)})
        listed = ", ".join(f":n{i}" for i in range(len(names)))
        if self.dialect == "sqlite":  # unicode_lower: SQLite's own lower() folds ASCII only (stores/sql/engine.py)
            element = "EXISTS (SELECT 1 FROM json_each(u.{col}) j WHERE unicode_lower(j.value) IN ({names}))"
        else:
            element = "EXISTS (SELECT 1 FROM json_array_elements_text(u.{col}::json) j(v) WHERE lower(j.v) IN ({names}))"
        where.append("(" + " OR ".join(element.format(col=col, names=listed) for col in ("persons", "entities")) + ")")
        source = "memory_units u"
        if through_index and self.dialect == "sqlite":
            source = _FTS_UNITS
            where.insert(0, "memory_units_fts MATCH :q")
            params["q"] = " OR ".join(_fts_phrase(n) for n in names)
        elif through_index:
            # The listed names' own index (0009), every word of a name rather than the phrase:
            # GIN answers that without reading positions; the exact check follows anyway.
            where.insert(0, "u.names_tsv @@ (" + " || ".join(f"plainto_tsquery('simple', :n{i})" for i in range(len(names))) + ")")
        sql = f"SELECT u.id FROM {source} WHERE {' AND '.join(where)} ORDER BY u.id DESC"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = int(limit)
        stmt = text(sql)
        if as_of is not None:  # bound as the column's type: SQLite compares the stored text form
            stmt = stmt.bindparams(bindparam("as_of", type_=UtcDateTime))
        async with self.engine.connect() as conn:
            return [int(r[0]) for r in await conn.execute(stmt, params)]

    async def unit_timeline(self, scope: Scope, as_of: datetime | None = None) -> list[tuple[int, str | None, datetime]]:
        """Visible level-0 units as (id, session_id, time), ordered by session, then time, then id:
        who is next to whom."""
        when = event_when(MemoryUnitRow)
        stmt = valid_at(
            in_scope(select(MemoryUnitRow.id, MemoryUnitRow.session_id, when), MemoryUnitRow, scope), as_of
        ).where(MemoryUnitRow.level == 0).order_by(MemoryUnitRow.session_id, when, MemoryUnitRow.id)
        async with self._sessions() as session:
            return [(int(r[0]), r[1], as_utc(r[2])) for r in await session.execute(stmt)]

    async def unit_placement(self, tenant: str, ids: Sequence[int]) -> list[UnitPlacement]:
        """Where each existing unit among `ids` is now: its scope fields, level and whether it is
        open, for caches that follow the change log (a missing id was deleted)."""
        out: list[UnitPlacement] = []
        columns = (MemoryUnitRow.id, MemoryUnitRow.user_id, MemoryUnitRow.agent_id, MemoryUnitRow.session_id,
                   MemoryUnitRow.level, MemoryUnitRow.valid_to, event_when(MemoryUnitRow))
        async with self._sessions() as session:
            for chunk in chunks(list(ids)):
                stmt = select(*columns).where(MemoryUnitRow.tenant == tenant, MemoryUnitRow.id.in_(chunk))
                out += [UnitPlacement(int(r[0]), r[1], r[2], r[3], int(r[4]), r[5] is None, as_utc(r[6]))
                        for r in await session.execute(stmt)]
        return out


@dataclass(frozen=True)
class UnitPlacement:
    unit_id: int
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    level: int
    open: bool
    when: datetime  # its place in its session's timeline (`event_when`)

    def visible_in(self, scope: Scope) -> bool:
        """Open and inside the query scope (fields given must match, as `in_scope`)."""
        return self.open and all(
            getattr(scope, f) is None or getattr(scope, f) == getattr(self, f) for f in ("user_id", "agent_id", "session_id")
        )


def event_when(model: type[MemoryUnitRow]) -> Any:
    """A unit's time for time-range questions: its event time, else when it became valid (indexed, 0008)."""
    return func.coalesce(model.event_time, model.valid_from)



def _fts_phrase(words: str) -> str:
    """`words` as one FTS5 phrase (quoted, its quotes doubled)."""
    return '"' + words.replace('"', '""') + '"'


def _scope_where(
    scope: Scope, as_of: datetime | None, any_validity: bool = False
) -> tuple[list[str], dict[str, Any]]:
    """`in_scope` and `valid_at` (unless `any_validity`) as SQL text over the alias `u`, for the
    hand-written full-text queries."""
    params: dict[str, Any] = {"tenant": scope.tenant}
    where = ["u.tenant = :tenant"]
    for field in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, field)
        if value is not None:
            where.append(f"u.{field} = :{field}")
            params[field] = value
    if any_validity:
        return where, params
    if as_of is None:
        where.append("u.valid_to IS NULL")
    else:
        where.append("u.valid_from <= :as_of AND (u.valid_to IS NULL OR u.valid_to > :as_of)")
        params["as_of"] = as_of
    return where, params
