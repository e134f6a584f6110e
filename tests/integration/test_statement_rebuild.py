"""Rebuilding statement keys (`memory_service/consolidate/rebuild.py`, `stores/sql/statement_keys.py`)
on real SQLite and PostgreSQL, with the packaged embedder: old units get today's keys, nothing
else changes, and an update arriving after the rebuild closes a unit consolidated before keys existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from memory_service import doctor
from memory_service.consolidate.reading import StatementReader
from memory_service.consolidate.rebuild import NothingToRebuild, rebuild_statement_keys
from memory_service.consolidate.statements import STATEMENT_KEYS_VERSION
from memory_service.domain import EventIn, MemoryUnit, MemoryUnitDraft, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.consolidation import UnitClosure
from stores.sql.engine import create_engine, migrate
from stores.sql.rows import NewUnit
from stores.sql.statement_keys import StatementKeyTable
from stores.sql.store import SqlStore
from stores.sql.tables import StatementKeyVersionRow, UnitStatementRow

T0 = datetime(2024, 2, 1, 9, 0, tzinfo=UTC)
MAYA = Scope(user_id="maya")


def new_unit(text: str, source: str, tenant: str = "local", level: int = 0) -> NewUnit:
    return NewUnit(
        draft=MemoryUnitDraft(text=text, source_event_ids=[source], persons=["Maya"], event_time=T0),
        scope=Scope(tenant=tenant, user_id="maya", session_id="s1"),
        embedding=np.ones(4, dtype=np.float32).tobytes(),
        compressor="extractive",
        compressor_version="1",
        level=level,
    )


async def save(store: SqlStore, unit: NewUnit, consolidated: bool = True) -> MemoryUnit:
    """Store a unit; `consolidated` claims it the way consolidation did before migration 0007 (no keys)."""
    (saved,) = await store.save_compression(unit.scope.tenant, [unit], [])
    if consolidated:
        await store.consolidation.apply(unit.scope.tenant, [saved.id])
    return saved


async def add_rows(store: SqlStore, tenant: str, unit_id: int, *keys: str) -> None:
    async with store.session() as session, session.begin():
        await session.execute(
            UnitStatementRow.__table__.insert(), [{"tenant": tenant, "key": k, "unit_id": unit_id} for k in keys]
        )


async def all_rows(store: SqlStore) -> list[tuple[str, str, int]]:
    async with store.session() as session:
        rows = await session.execute(select(UnitStatementRow.tenant, UnitStatementRow.key, UnitStatementRow.unit_id))
        return sorted(rows.all())


@pytest.fixture
async def store(db_url: str):
    store = await SqlStore.open(db_url)
    yield store
    await store.close()


@pytest.fixture(scope="module")
def reader(embedder) -> StatementReader:
    return StatementReader(embedder)


async def test_rebuild_gives_old_units_todays_keys_and_touches_nothing_else(
    store: SqlStore, reader: StatementReader
) -> None:
    keyless = await save(store, new_unit("Maya said: I live in Porto.", "m1"))
    stale = await save(store, new_unit("Maya said: I work as a paramedic at City General.", "m2"))
    await add_rows(store, "local", stale.id, "maya|job")  # an older derivation's key
    closed = await save(store, new_unit("Maya said: I drive a Volvo.", "m3"))
    await add_rows(store, "local", closed.id, "maya|car")
    await store.consolidation.apply("local", [], closures=[UnitClosure(closed.id, {"op": "test"}, valid_to=T0)])
    fresh = await save(store, new_unit("Maya said: My partner is Sam.", "m4"), consolidated=False)
    (summary,) = await store.consolidation.apply("local", [], new_units=[new_unit("Maya lives in Porto, works as a paramedic.", "m1", level=1)])
    await add_rows(store, "local", summary.id, "maya|summary")
    elsewhere = await save(store, new_unit("Maya said: I live in Lisbon.", "a1", tenant="acme"))
    units_before = await store.list_units(MAYA, include_invalid=True)
    log_before = await store.changes.last_seq()
    table = StatementKeyTable(store)

    report = await rebuild_statement_keys(store, reader, tenant="local", batch_size=2)
    stored = await table.keys_of("local", [keyless.id, stale.id, closed.id, fresh.id, summary.id])
    assert stored[keyless.id] == reader.keys(keyless) == ["maya|residence"]  # had no rows: gets its keys
    assert stored[stale.id] == reader.keys(stale) == ["maya|employer", "maya|occupation"]  # stale: replaced
    assert stored[closed.id] == ["maya|car"] and stored[summary.id] == ["maya|summary"]  # left alone
    assert fresh.id not in stored  # consolidation writes its keys when it claims it
    assert await table.keys_of("acme", [elsewhere.id]) == {}  # another tenant
    assert (report.units, report.keys, report.tenants_marked) == (2, 3, ["local"])
    assert await table.versions() == {"local": STATEMENT_KEYS_VERSION}
    assert await table.stale_tenants(STATEMENT_KEYS_VERSION) == {"acme": 0}  # consolidated, no version
    # Units and the change log are untouched: nothing for FAISS or the caches to follow.
    assert await store.list_units(MAYA, include_invalid=True) == units_before
    assert await store.changes.last_seq() == log_before
    found = await store.consolidation.stating(MAYA, ["maya|residence", "maya|occupation"])
    assert [u.id for u, _ in found] == [keyless.id, stale.id]

    rows = await all_rows(store)
    again = await rebuild_statement_keys(store, reader, tenant="local")
    assert await all_rows(store) == rows and (again.units, again.keys) == (2, 3)

    owner = await rebuild_statement_keys(store, reader, owner=Scope(tenant="acme", user_id="maya"))
    assert (owner.units, owner.tenants_marked) == (1, [])  # an owner's rebuild records no version
    assert await table.keys_of("acme", [elsewhere.id]) == {elsewhere.id: ["maya|residence"]}
    everything = await rebuild_statement_keys(store, reader)
    assert (everything.units, everything.tenants_marked) == (3, ["acme", "local"])
    assert await table.stale_tenants(STATEMENT_KEYS_VERSION) == {}
    assert await all_rows(store) == sorted([*rows, ("acme", "maya|residence", elsewhere.id)])


async def test_rebuild_refuses_an_unknown_tenant_or_owner(store: SqlStore, reader: StatementReader) -> None:
    await save(store, new_unit("Maya said: I live in Porto.", "m1"))
    with pytest.raises(NothingToRebuild, match="unknown tenant 'nobody'"):
        await rebuild_statement_keys(store, reader, tenant="nobody")
    with pytest.raises(NothingToRebuild, match="no memory units for tenant=local,user_id=noor"):
        await rebuild_statement_keys(store, reader, owner=Scope(user_id="noor"))
    assert await all_rows(store) == []


async def test_migration_0011_marks_consolidated_tenants_unknown_and_doctor_says_how_to_fix(
    db_url: str, tmp_path: Path, reader: StatementReader
) -> None:
    engine = create_engine(db_url)
    await migrate(engine, "0010")  # a store written by the code before this revision
    old = SqlStore(engine)
    await save(old, new_unit("Maya said: I live in Porto.", "m1"))
    await save(old, new_unit("Maya said: I live in Lisbon.", "b1", tenant="beta"), consolidated=False)
    await old.close()
    store = await SqlStore.open(db_url)  # migrates to head
    try:
        table = StatementKeyTable(store)
        assert await table.versions() == {"local": 0}  # beta has no consolidated unit: nothing to know
        settings = Settings(data_dir=tmp_path / "data", database_url=db_url)
        check = await doctor.check_statement_keys(settings)
        assert check.status == "warn" and not check.failed
        assert "1 tenant(s) (local) were derived by version 0" in check.detail
        assert "memory-service consolidate --rebuild-statements --tenant local" in check.detail

        await rebuild_statement_keys(store, reader, tenant="local")
        check = await doctor.check_statement_keys(settings)
        assert (check.status, check.detail) == ("ok", f"statement keys at derivation version {STATEMENT_KEYS_VERSION}")
    finally:
        await store.close()


# -- after a rebuild, consolidation closes what an old unit stated ---------------------------


def event(i: int, user: str, text: str, day: int) -> EventIn:
    return EventIn(
        event_id=f"{user}{i}", user_id=user, session_id=f"s{day}", role="user", speaker=user.title(), content=text,
        timestamp=T0 + timedelta(days=day),
    )


def unit_of(units: list[MemoryUnit], event_id: str) -> MemoryUnit:
    return next(u for u in units if u.level == 0 and u.source_event_ids[0] == event_id)


async def test_an_update_after_the_rebuild_closes_a_unit_consolidated_before_keys_existed(settings: Settings, embedder) -> None:
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        owners = {user: Scope(user_id=user) for user in ("maya", "noor")}
        for user, owner in owners.items():
            await service.ingest([event(1, user, "I'm living in Porto these days.", 0)], wait=True)
            await service.consolidate(owner)
        # What a store consolidated before migration 0007 looks like once migrated: no keys, version 0.
        async with service.store.session() as session, session.begin():
            await session.execute(delete(UnitStatementRow))
            await session.execute(update(StatementKeyVersionRow).values(version=0))
        assert await service.store.consolidation.stating(owners["maya"], ["maya|residence"]) == []

        report = await rebuild_statement_keys(service.store, service.consolidator.reader, owner=owners["maya"])
        assert report.units == 1 and report.keys >= 1
        (found, _), = await service.store.consolidation.stating(owners["maya"], ["maya|residence"])
        assert found.source_event_ids == ["maya1"]
        assert await service.store.consolidation.stating(owners["noor"], ["noor|residence"]) == []  # not rebuilt

        reports = {}
        for user, owner in owners.items():
            await service.ingest([event(2, user, "After months of packing we finally settled in Bergen.", 40)], wait=True)
            reports[user] = await service.consolidate(owner)
        units = {user: await service.store.list_units(owner, include_invalid=True) for user, owner in owners.items()}
        old, new = unit_of(units["maya"], "maya1"), unit_of(units["maya"], "maya2")
        assert reports["maya"].superseded == 1 and (old.id, new.id) in reports["maya"].supersessions
        assert old.superseded_by == new.id and old.valid_to is not None and new.valid_to is None
        assert any(h.get("by") == "statement" for h in old.history)
        # The owner not rebuilt: the similarity path alone cannot pair the two, so the stale value stays.
        stale, update_ = unit_of(units["noor"], "noor1"), unit_of(units["noor"], "noor2")
        cosine = float(np.dot(*embedder.embed([stale.text, update_.text])))
        assert cosine < service.consolidator.supersede_threshold
        assert reports["noor"].superseded == 0 and stale.valid_to is None
    finally:
        await service.close()
