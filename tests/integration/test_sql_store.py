"""The SQL store against real SQLite and real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from compressors.text.words import lexical_terms
from memory_service.domain import Event, MemoryUnitDraft, Scope
from stores.sql.rows import NewUnit
from stores.sql.store import AlreadyCompressed, SqlStore

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def event(event_id: str, content: str, user: str = "u1", minutes: int = 0, tenant: str = "local") -> Event:
    return Event(
        tenant=tenant,
        event_id=event_id,
        user_id=user,
        session_id="s1",
        role="user",
        speaker="Caroline",
        content=content,
        timestamp=T0 + timedelta(minutes=minutes),
        received_at=T0,
    )


def new_unit(text: str, source: str, user: str = "u1", tenant: str = "local") -> NewUnit:
    return NewUnit(
        draft=MemoryUnitDraft(text=text, source_event_ids=[source], keywords=text.lower().split()[:3]),
        scope=Scope(tenant=tenant, user_id=user, session_id="s1"),
        embedding=np.ones(4, dtype=np.float32).tobytes(),
        compressor="extractive",
        compressor_version="1",
    )


async def insert(store: SqlStore, events: list[Event]) -> list[str]:
    """Store events with a token count per event (one per word, enough for the store's tests)."""
    return await store.insert_events(events, [len(e.content.split()) for e in events])


@pytest.fixture
async def store(db_url: str):
    store = await SqlStore.open(db_url)
    yield store
    await store.close()


async def test_migrations_are_idempotent(db_url: str) -> None:
    first = await SqlStore.open(db_url)
    await first.close()
    second = await SqlStore.open(db_url)
    assert await second.count_events() == 0
    await second.close()


async def test_processes_migrating_one_fresh_postgres_database_at_once_all_succeed(pg_url: str) -> None:
    """Replicas and workers started together each migrate on start (an advisory lock serialises them)."""
    # Without the lock the four deadlock or fail on duplicate tables.
    stores = await asyncio.wait_for(asyncio.gather(*(SqlStore.open(pg_url) for _ in range(4))), 60)
    try:
        assert [await s.count_events() for s in stores] == [0, 0, 0, 0]
    finally:
        for s in stores:
            await s.close()


async def test_insert_events_is_idempotent_per_event_id(store: SqlStore) -> None:
    new = await insert(store, [event("e1", "a"), event("e2", "b")])
    assert new == ["e1", "e2"]
    again = await insert(store, [event("e2", "b changed"), event("e3", "c")])
    assert again == ["e3"]
    events = await store.list_events(Scope(user_id="u1"))
    assert [e.event_id for e in events] == ["e1", "e2", "e3"]
    assert events[1].content == "b"  # the first version is kept, never overwritten
    assert events[0].timestamp == T0


async def test_same_event_id_in_two_tenants_is_two_events(store: SqlStore) -> None:
    await insert(store, [event("e1", "a", tenant="t1"), event("e1", "b", tenant="t2")])
    assert await store.count_events(Scope(tenant="t1", user_id="u1")) == 1
    assert await store.count_events(Scope(tenant="t2", user_id="u1")) == 1


async def test_pending_events_then_compression_marks_them_done(store: SqlStore) -> None:
    await insert(store, [event("e1", "Caroline went hiking", minutes=0), event("e2", "Melanie paints", minutes=1)])
    scope = Scope(user_id="u1", session_id="s1")
    assert await store.pending_scopes() == [scope]
    pending = await store.pending_events(scope)
    assert [e.event_id for e in pending] == ["e1", "e2"]

    units = await store.save_compression("local", [new_unit("Caroline went hiking", "e1")], ["e1", "e2"])
    assert units[0].id > 0 and units[0].source_event_ids == ["e1"]
    assert await store.pending_events(scope) == []
    assert await store.pending_scopes() == []
    changes = await store.changes.since(0)
    assert [(c.unit_id, c.op) for c in changes] == [(units[0].id, "upsert")]

    with pytest.raises(AlreadyCompressed):
        await store.save_compression("local", [new_unit("duplicate", "e1")], ["e1"])
    assert await store.count_units() == 1  # the failed save stored nothing


async def test_lexical_search_is_scoped_and_ranked(store: SqlStore) -> None:
    await insert(store, [event("e1", "x"), event("e2", "y"), event("e3", "z", user="u2")])
    await store.save_compression(
        "local",
        [
            new_unit("Caroline adopted a golden retriever puppy", "e1"),
            new_unit("Caroline bought running shoes", "e2"),
            new_unit("Someone else adopted a puppy", "e3", user="u2"),
        ],
        [],
    )
    hits = await store.search.lexical(Scope(user_id="u1"), lexical_terms("puppy adopted"), 10)
    units = await store.units_by_ids("local", [i for i, _ in hits])
    assert [units[i].text for i, _ in hits] == ["Caroline adopted a golden retriever puppy"]
    # stemming: "running" matches "runs"
    hits = await store.search.lexical(Scope(user_id="u1"), lexical_terms("runs"), 10)
    assert len(hits) == 1
    assert await store.search.lexical(Scope(user_id="u1"), lexical_terms("?!"), 10) == []


async def test_full_text_queries_on_sqlite_are_driven_by_the_fts_index(tmp_path) -> None:
    """Each query that joins FTS5 with the units must scan FTS5 first and look units up by id. Given
    a units index on `tenant` the planner may instead probe FTS5 once per unit of the tenant
    (one name lookup took 130 s at 10^5 units), so the queries say CROSS JOIN."""
    from sqlalchemy import event as sa_event
    from sqlalchemy import text

    store = await SqlStore.open(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    try:
        await insert(store, [event(f"e{n}", "x", minutes=n) for n in range(3)])
        await store.save_compression("local", [new_unit(f"Caroline adopted puppy {n}", f"e{n}") for n in range(3)], [])
        seen: list[tuple[str, object]] = []
        listener = lambda conn, cursor, sql, params, context, many: seen.append((sql, params))  # noqa: E731
        sa_event.listen(store.engine.sync_engine, "before_cursor_execute", listener)
        await store.search.lexical(Scope(user_id="u1"), ["puppy", "adopted"], 10)
        await store.search.unit_ids_mentioning(Scope(user_id="u1"), ["Caroline"])
        sa_event.remove(store.engine.sync_engine, "before_cursor_execute", listener)
        joins = [(sql, params) for sql, params in seen if "memory_units_fts MATCH" in sql and "memory_units u" in sql]
        assert len(joins) == 2
        async with store.engine.connect() as conn:
            for sql, params in joins:
                raw = await conn.get_raw_connection()
                plan = raw.driver_connection._conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                steps = [row[-1] for row in plan]
                assert steps[0].startswith("SCAN memory_units_fts"), steps
                assert any("USING INTEGER PRIMARY KEY" in step for step in steps), steps
            await conn.execute(text("SELECT 1"))
    finally:
        await store.close()


async def test_delete_unit_logs_a_delete_and_leaves_lexical_index(store: SqlStore) -> None:
    await insert(store, [event("e1", "x")])
    [unit] = await store.save_compression("local", [new_unit("Caroline adopted a puppy", "e1")], ["e1"])
    assert await store.delete_unit("local", unit.id)
    assert not await store.delete_unit("local", unit.id)
    assert await store.get_unit("local", unit.id) is None
    assert await store.search.lexical(Scope(user_id="u1"), lexical_terms("puppy"), 10) == []
    assert [c.op for c in await store.changes.since(0)] == ["upsert", "delete"]
    # the raw event is untouched by deleting a unit derived from it
    assert [e.event_id for e in await store.list_events(Scope(user_id="u1"))] == ["e1"]


async def test_unit_round_trip_keeps_every_field(store: SqlStore) -> None:
    await insert(store, [event("e1", "x")])
    draft = MemoryUnitDraft(
        text="Caroline moved to Denver in May 2023",
        kind="event",
        keywords=["moved", "denver"],
        persons=["Caroline"],
        entities=["Denver"],
        location="Denver",
        topic="housing",
        event_time=T0,
        source_event_ids=["e1"],
        importance=0.7,
    )
    new = NewUnit(draft, Scope(user_id="u1", session_id="s1"), np.arange(4, dtype=np.float32).tobytes(), "extractive", "1")
    [saved] = await store.save_compression("local", [new], ["e1"])
    loaded = await store.get_unit("local", saved.id)
    assert loaded is not None
    assert loaded.model_dump(exclude={"created_at", "updated_at"}) == saved.model_dump(exclude={"created_at", "updated_at"})
    assert loaded.event_time == T0 and loaded.valid_from == T0 and loaded.valid_to is None
    assert loaded.persons == ["Caroline"] and loaded.location == "Denver"
    embeddings = await store.changes.embeddings([saved.id])
    assert np.frombuffer(embeddings[saved.id][1], dtype=np.float32).tolist() == [0, 1, 2, 3]


async def test_unit_ids_are_never_reused(store: SqlStore) -> None:
    await insert(store, [event("e1", "x"), event("e2", "y")])
    [first] = await store.save_compression("local", [new_unit("Caroline adopted a puppy", "e1")], ["e1"])
    assert await store.delete_unit("local", first.id)
    [second] = await store.save_compression("local", [new_unit("Caroline bought shoes", "e2")], ["e2"])
    assert second.id > first.id


async def test_a_bulk_save_gives_each_unit_the_id_of_its_own_row(store: SqlStore) -> None:
    """Units go in as multi-row INSERTs (on SQLite without SQLAlchemy's row-at-a-time ordering),
    over several statements here, after a deletion left a gap: each returned unit is its row."""
    await insert(store, [event("e0", "x")])
    [gap] = await store.save_compression("local", [new_unit("Caroline adopted a puppy", "e0")], ["e0"])
    assert await store.delete_unit("local", gap.id)
    count = 2500  # past one statement's rows on both dialects
    await insert(store, [event(f"e{i}", f"turn {i}", minutes=i) for i in range(1, count + 1)])
    units = [new_unit(f"Caroline said turn {i}", f"e{i}") for i in range(1, count + 1)]
    saved = await store.save_compression("local", units, [f"e{i}" for i in range(1, count + 1)])
    assert [u.text for u in saved] == [u.draft.text for u in units]
    assert all(u.id > gap.id for u in saved)
    stored = await store.units_by_ids("local", [u.id for u in saved])
    assert all(stored[u.id].text == u.text and stored[u.id].source_event_ids == u.source_event_ids for u in saved)
    assert [c.unit_id for c in await store.changes.since(0)][-count:] == [u.id for u in saved]
