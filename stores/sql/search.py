"""Candidate lookups for retrieval: lexical (full-text) search and the symbolic lookups of query analysis.

All are tenant- and scope-filtered and return unit ids; the retriever fuses them with the
vector candidates, which `unit_ids_in_scope` (what a query scope may see) filters.
Lexical search ranks with the database's own full-text index (SQLite FTS5 or a
PostgreSQL tsvector); the symbolic lookups (a time range, a mentioned name, the
timeline) are plain filters on the unit columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from memory_service.domain import Scope
from stores.sql.engine import session_factory
from stores.sql.scoping import in_scope, valid_at
from stores.sql.tables import MemoryUnitRow


class UnitSearch:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = session_factory(engine)

    async def lexical(
        self, scope: Scope, terms: Sequence[str], k: int, include_closed: bool = False
    ) -> list[tuple[int, float]]:
        """Full-text search over the scope's units: (unit id, score), best first.

        `terms` are the words to look for, already split (`compressors.text.words.lexical_terms`).
        Only currently valid units unless `include_closed` (the caller then filters by
        validity at its own time). SQLite uses FTS5's BM25; PostgreSQL uses ts_rank_cd
        over a generated tsvector. Terms are OR-ed so a unit matching any query word is a
        candidate.
        """
        if not terms:
            return []
        params: dict[str, Any] = {"tenant": scope.tenant, "k": k}
        where = ["u.tenant = :tenant"] if include_closed else ["u.tenant = :tenant", "u.valid_to IS NULL"]
        for field in ("user_id", "agent_id", "session_id"):
            value = getattr(scope, field)
            if value is not None:
                where.append(f"u.{field} = :{field}")
                params[field] = value
        if self.dialect == "sqlite":
            params["q"] = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            sql = (
                "SELECT u.id, -bm25(memory_units_fts) AS score FROM memory_units_fts "
                "JOIN memory_units u ON u.id = memory_units_fts.rowid "
                f"WHERE memory_units_fts MATCH :q AND {' AND '.join(where)} "
                "ORDER BY bm25(memory_units_fts) LIMIT :k"
            )
        else:
            params["q"] = " or ".join(terms)
            sql = (
                "SELECT u.id, ts_rank_cd(u.search_tsv, q) AS score "
                "FROM memory_units u, websearch_to_tsquery('english', :q) q "
                f"WHERE u.search_tsv @@ q AND {' AND '.join(where)} "
                "ORDER BY score DESC LIMIT :k"
            )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(sql), params)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    async def unit_ids_in_scope(self, scope: Scope, as_of: datetime | None = None) -> list[int]:
        """Ids of the units a query scope may see: valid now, or valid at `as_of`."""
        stmt = valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        async with self._sessions() as session:
            return list(await session.scalars(stmt))

    # -- symbolic lookups for query analysis (tenant + scope filtered) ---------

    async def unit_ids_in_time_range(
        self, scope: Scope, start: datetime | None, end: datetime | None, as_of: datetime | None = None
    ) -> list[int]:
        """Visible units whose event time (or, lacking one, valid_from) is in [start, end)."""
        when = func.coalesce(MemoryUnitRow.event_time, MemoryUnitRow.valid_from)
        stmt = valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        if start is not None:
            stmt = stmt.where(when >= start)
        if end is not None:
            stmt = stmt.where(when < end)
        async with self._sessions() as session:
            return list(await session.scalars(stmt))

    async def unit_ids_mentioning(self, scope: Scope, names: Sequence[str], as_of: datetime | None = None) -> list[int]:
        """Visible units whose persons or entities include one of `names` (case-insensitive)."""
        wanted = sorted({n.strip().lower() for n in names if n.strip()})
        if not wanted:
            return []
        params = {f"n{i}": name for i, name in enumerate(wanted)}
        names_sql = ", ".join(f":{key}" for key in params)
        if self.dialect == "sqlite":
            mention = "EXISTS (SELECT 1 FROM json_each(memory_units.{col}) j WHERE lower(j.value) IN ({names}))"
        else:
            mention = (
                "EXISTS (SELECT 1 FROM json_array_elements_text(memory_units.{col}::json) j(v) "
                "WHERE lower(j.v) IN ({names}))"
            )
        matched = " OR ".join(mention.format(col=col, names=names_sql) for col in ("persons", "entities"))
        stmt = valid_at(in_scope(select(MemoryUnitRow.id), MemoryUnitRow, scope), as_of)
        stmt = stmt.where(text(f"({matched})").bindparams(**params))
        async with self._sessions() as session:
            return list(await session.scalars(stmt))

    async def unit_timeline(self, scope: Scope, as_of: datetime | None = None) -> list[tuple[int, str | None]]:
        """Visible units as (id, session_id), ordered by session, then time: who is next to whom."""
        when = func.coalesce(MemoryUnitRow.event_time, MemoryUnitRow.valid_from)
        stmt = valid_at(
            in_scope(select(MemoryUnitRow.id, MemoryUnitRow.session_id), MemoryUnitRow, scope), as_of
        ).where(MemoryUnitRow.level == 0).order_by(MemoryUnitRow.session_id, when, MemoryUnitRow.id)
        async with self._sessions() as session:
            return [(int(r[0]), r[1]) for r in await session.execute(stmt)]
