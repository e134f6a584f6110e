"""History tokens as a SQL sum of per-event counts stored at ingest, and migration 0005's backfill
of events stored before it (real SQLite and PostgreSQL, the real embedder)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from memory_service.domain import EventIn, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens
from stores.sql.engine import create_engine, migrate
from stores.sql.store import SqlStore

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
TEXTS = [
    "I adopted a cat named Miso yesterday.",
    "Ann's flight LH 1234 leaves Lisbon at 07:45 on 3 April 2024 🛫.",
    "ok",
    "Die Straße ist über 12,5 km lang; naïve café — ﷽",
]


def event(i: int, text: str, user: str = "ann", session: str = "s1") -> EventIn:
    return EventIn(event_id=f"{user}-{i}", user_id=user, session_id=session, role="user", speaker="Ann",
                   content=text, timestamp=T0 + timedelta(minutes=i))


async def test_history_tokens_are_the_sum_of_the_counts_stored_at_ingest(settings: Settings, embedder) -> None:
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        await service.ingest([event(i, t, session=f"s{i % 2}") for i, t in enumerate(TEXTS)], wait=True)
        await service.ingest([event(9, "Bob likes chess.", user="bob")])
        await service.ingest([event(0, TEXTS[0])])  # a re-sent id is not stored, so not counted, twice
        await service.ingest([event(0, "other tenant's words", user="ann")], tenant="acme")
        store = service.store
        per_event = [count_tokens(t) for t in TEXTS]
        assert await store.history_tokens(Scope(user_id="ann")) == sum(per_event)
        assert await store.history_tokens(Scope(user_id="ann", session_id="s1")) == per_event[1] + per_event[3]
        assert await store.history_tokens(Scope(user_id="bob")) == count_tokens("Bob likes chess.")
        assert await store.history_tokens(Scope(tenant="acme", user_id="ann")) == count_tokens("other tenant's words")
        assert await store.history_tokens(Scope(user_id="nobody")) == 0

        answer = await service.context(Scope(user_id="ann"), "What is my cat called?", 128)
        assert not answer.empty and answer.history_tokens == sum(per_event)
    finally:
        await service.close()


async def test_migration_backfills_the_counts_of_events_stored_before_it(db_url: str) -> None:
    engine = create_engine(db_url)
    await migrate(engine, "0004")
    texts = [f"{TEXTS[i % len(TEXTS)]} (turn {i})" for i in range(2_100)]  # more than one backfill batch
    events = sa.table(
        "events", *(sa.column(c) for c in ("tenant", "event_id", "user_id", "session_id", "role", "content",
                                           "timestamp", "received_at", "metadata")),
    )
    async with engine.begin() as conn:
        await conn.execute(events.insert(), [
            {"tenant": "local", "event_id": f"e{i}", "user_id": "ann" if i % 3 else "bob", "session_id": "s1",
             "role": "user", "content": t, "timestamp": T0, "received_at": T0, "metadata": "{}"}
            for i, t in enumerate(texts)
        ])
        assert "content_tokens" not in [c["name"] for c in await conn.run_sync(
            lambda sync: sa.inspect(sync).get_columns("events"))]
    await migrate(engine, "0005")
    async with engine.connect() as conn:
        stored = dict((await conn.execute(sa.text("SELECT event_id, content_tokens FROM events"))).all())
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
    await engine.dispose()
    assert version == "0005"
    assert stored == {f"e{i}": count_tokens(t) for i, t in enumerate(texts)}

    store = await SqlStore.open(db_url)
    try:
        assert await store.history_tokens(Scope(user_id="bob")) == sum(
            count_tokens(t) for i, t in enumerate(texts) if not i % 3)
        ann = await store.history_tokens(Scope(user_id="ann"))
        assert ann + await store.history_tokens(Scope(user_id="bob")) == sum(stored.values())
    finally:
        await store.close()
