"""Property: with two tenants and several scopes, no read ever returns another tenant's or another
(non-overlapping) scope's data, and erased data never comes back.

Hypothesis drives random sequences of ingest (with wait), context, list, get, delete event,
erase scope and consolidate through the REST API (two API keys, in-process ASGI, real SQLite
and FAISS), checking every answer against a model of who stored what.

The embedder here is the deterministic `HashingEmbedder`, for this test only: it keeps
examples fast and reproducible (Hypothesis replays and shrinks them), and isolation does not
depend on what vectors mean. The real packaged model is covered by the other tests
(`tests/e2e/test_auth_api.py`, `tests/integrations/test_tenant_isolation.py`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from api.inprocess import InProcessService
from memory_service.client import MemoryClient, NotFound
from memory_service.domain import Scope
from memory_service.index.embedding import HashingEmbedder
from memory_service.settings import Settings

TENANTS = ("tenant-a", "tenant-b")
USERS = ("u1", "u2")
SESSIONS = ("s1", "s2")
TOKEN = re.compile(r"\bzq\d+\b")

tenants = st.sampled_from(TENANTS)
users = st.sampled_from(USERS)
sessions = st.sampled_from(SESSIONS)
maybe_sessions = st.none() | sessions


class IsolationMachine(RuleBasedStateMachine):
    database_url: str | None = None  # None: SQLite in a fresh directory per example

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="isolation-"))
        config = Settings(data_dir=self.dir, database_url=self.database_url, api_key_cache_seconds=60)
        self.local = InProcessService(config, embedder=HashingEmbedder(), run_jobs=False).start()
        self.clients: dict[str, MemoryClient] = {t: self.local.client(api_key=self.local.create_key(t)) for t in TENANTS}
        # tenant -> event_id -> (user, session, token); event ids repeat across tenants on purpose.
        self.events: dict[str, dict[str, tuple[str, str, str]]] = {t: {} for t in TENANTS}
        self.erased: set[str] = set()  # tokens of erased events (tokens are unique across tenants)
        self.counter = 0
        self.next_id = dict.fromkeys(TENANTS, 0)

    def teardown(self) -> None:
        for client in self.clients.values():
            client.close()
        self.local.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- model ----------------------------------------------------------------

    def visible(self, tenant: str, user: str, session: str | None) -> dict[str, str]:
        """event_id -> token of the events a query scope may see."""
        return {
            event_id: token
            for event_id, (u, s, token) in self.events[tenant].items()
            if u == user and (session is None or s == session)
        }

    def check_units(self, tenant: str, user: str, session: str | None, units: list[tuple[str, list[str]]]) -> None:
        allowed = self.visible(tenant, user, session)
        for text, sources in units:
            assert set(sources) <= set(allowed), (tenant, user, session, text, sources, allowed)
            tokens = set(TOKEN.findall(text))
            assert tokens <= set(allowed.values()), (tenant, user, session, text, allowed)
            assert not tokens & self.erased, (text, self.erased)

    # -- rules ----------------------------------------------------------------

    @initialize()
    def one_event_in_every_scope(self) -> None:
        """So that every delete and erase of a random sequence has neighbours it must not touch."""
        for tenant in TENANTS:
            self.ingest_batch(tenant, [(user, session) for user in USERS for session in SESSIONS])

    @rule(tenant=tenants, user=users, session=sessions, count=st.integers(1, 3))
    def ingest(self, tenant: str, user: str, session: str, count: int) -> None:
        self.ingest_batch(tenant, [(user, session)] * count)

    def ingest_batch(self, tenant: str, scopes: list[tuple[str, str]]) -> None:
        batch = []
        for user, session in scopes:
            self.counter += 1
            token = f"zq{self.counter}"
            # Ids count per tenant, so both tenants hold events with the same ids.
            self.next_id[tenant] += 1
            event_id = f"ev{self.next_id[tenant]}"
            batch.append({
                "event_id": event_id, "user_id": user, "session_id": session, "role": "user",
                "speaker": user.upper(), "content": f"{user.upper()} noted the codeword {token} for the vault.",
            })
            self.events[tenant][event_id] = (user, session, token)
        response = self.clients[tenant].ingest(batch, wait=True)
        assert response.accepted == len(scopes)

    @rule(tenant=tenants, user=users, session=maybe_sessions)
    def context(self, tenant: str, user: str, session: str | None) -> None:
        # Every token ever stored, this tenant's or not, erased or not: the lexical index gets to try them all.
        tokens = {token for events in self.events.values() for _, _, token in events.values()} | self.erased
        query = "codeword vault " + " ".join(sorted(tokens)[:30])
        result = self.clients[tenant].context(query, user_id=user, session_id=session, budget_tokens=2000)
        self.check_units(tenant, user, session, [(u.text, u.source_event_ids) for u in result.units])
        assert not set(TOKEN.findall(result.context)) - set(self.visible(tenant, user, session).values())

    @rule(tenant=tenants, user=users, session=maybe_sessions)
    def list_events(self, tenant: str, user: str, session: str | None) -> None:
        page = self.clients[tenant].list_events(user_id=user, session_id=session, limit=1000)
        got = {e.event_id: TOKEN.findall(e.content)[0] for e in page.events}
        assert got == self.visible(tenant, user, session)
        assert all(e.tenant == tenant for e in page.events)

    @rule(tenant=tenants, data=st.data())
    def get_event(self, tenant: str, data: st.DataObject) -> None:
        other = TENANTS[1 - TENANTS.index(tenant)]
        candidates = sorted(set(self.events[other]) | set(self.events[tenant]))
        if not candidates:
            return
        event_id = data.draw(st.sampled_from(candidates))
        if event_id in self.events[tenant]:
            assert self.clients[tenant].get_event(event_id).content.endswith(f"{self.events[tenant][event_id][2]} for the vault.")
        else:
            with pytest.raises(NotFound):
                self.clients[tenant].get_event(event_id)

    @rule(tenant=tenants, data=st.data())
    def delete_event(self, tenant: str, data: st.DataObject) -> None:
        if not self.events[tenant]:
            return
        event_id = data.draw(st.sampled_from(sorted(self.events[tenant])))
        self.clients[tenant].delete_event(event_id)
        self.erased.add(self.events[tenant].pop(event_id)[2])

    @rule(tenant=tenants, user=users, session=maybe_sessions)
    def erase_scope(self, tenant: str, user: str, session: str | None) -> None:
        gone = self.visible(tenant, user, session)
        response = self.clients[tenant].erase_scope(user_id=user, session_id=session)
        assert response.events_deleted == len(gone) and response.erased == bool(gone)
        for event_id, token in gone.items():
            del self.events[tenant][event_id]
            self.erased.add(token)

    @rule(tenant=tenants, user=users)
    def consolidate(self, tenant: str, user: str) -> None:
        self.local.run(self.local.service.consolidate(Scope(tenant=tenant, user_id=user)))

    @invariant()
    def every_memory_is_its_owners_and_nothing_erased_is_back(self) -> None:
        for tenant in TENANTS:
            for user in USERS:
                page = self.clients[tenant].list_memories(user_id=user, limit=1000)
                assert all(m.tenant == tenant and m.user_id == user for m in page.memories)
                self.check_units(tenant, user, None, [(m.text, m.source_event_ids) for m in page.memories])
                self.list_events(tenant, user, None)  # exactly what the model says: nothing lost, nothing extra


IsolationMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_isolation_property = IsolationMachine.TestCase


def test_isolation_sequence_on_postgresql(pg_url: str) -> None:
    """One fixed interleaving on PostgreSQL (the property runs on SQLite)."""

    class OnPostgres(IsolationMachine):
        database_url = pg_url

    machine = OnPostgres()
    try:
        machine.ingest("tenant-a", "u1", "s1", 3)
        machine.ingest("tenant-b", "u1", "s1", 3)  # same event ids, same user, other tenant
        machine.ingest("tenant-a", "u1", "s2", 2)
        machine.ingest("tenant-a", "u2", "s1", 2)
        for tenant in TENANTS:
            for session in (None, *SESSIONS):
                machine.context(tenant, "u1", session)
                machine.list_events(tenant, "u1", session)
        machine.consolidate("tenant-a", "u1")
        machine.erase_scope("tenant-a", "u1", "s1")
        machine.every_memory_is_its_owners_and_nothing_erased_is_back()
        machine.context("tenant-a", "u1", None)
        machine.context("tenant-b", "u1", "s1")
        machine.list_events("tenant-b", "u1", None)
        assert len(machine.events["tenant-b"]) == 3
        machine.erase_scope("tenant-b", "u1", None)
        machine.every_memory_is_its_owners_and_nothing_erased_is_back()
        machine.context("tenant-a", "u2", None)
    finally:
        machine.teardown()
