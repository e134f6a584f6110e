"""Query-aware context, stage by stage, on small hand-made scopes (real SQL, FAISS and embedder)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import text as text_sql
from sqlalchemy import update

from api.app import create_app
from memory_service.context.analysis import analyze
from memory_service.context.config import SelectionParams
from memory_service.context.packing import pack
from memory_service.context.retrieval import Candidate
from memory_service.context.selection import select
from memory_service.domain import EventIn, MemoryUnit, Scope
from memory_service.service import MemoryService
from memory_service.settings import Settings
from memory_service.tokens import count_tokens
from stores.sql.tables import MemoryUnitRow


def event(eid: str, speaker: str, text: str, when: datetime, user: str = "u1", session: str = "s1") -> EventIn:
    return EventIn(
        event_id=eid, user_id=user, session_id=session, role="user", speaker=speaker, content=text, timestamp=when
    )


@pytest.fixture
async def service(settings: Settings, embedder):
    # No background consolidation: its summaries would make what is retrieved depend on timing.
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    yield service
    await service.close()


async def test_temporal_question_gets_the_unit_from_the_right_month(service: MemoryService) -> None:
    march, july = datetime(2023, 3, 14, 10, tzinfo=UTC), datetime(2023, 7, 20, 10, tzinfo=UTC)
    await service.ingest(
        [
            event("a1", "Ann", "I went hiking in the mountains with my brother.", march, session="march"),
            event("a2", "Ann", "I went hiking in the mountains with my cousin.", july, session="july"),
            event("a3", "Ann", "My favourite food is lasagne.", july, session="july"),
        ],
        wait=True,
    )
    scope = Scope(user_id="u1")
    for query, month, wanted in (
        ("Who did Ann go hiking with in July 2023?", "2023-07", "a2"),
        ("Who did Ann go hiking with in March 2023?", "2023-03", "a1"),
    ):
        answer = await service.context(scope, query, budget_tokens=64)
        assert answer.analysis is not None and answer.analysis.temporal and answer.analysis.time_range is not None
        top = max(answer.chosen, key=lambda c: c.score)
        assert top.unit.source_event_ids == [wanted], query
        assert top.in_time_range
        assert f"{month}-" in answer.context  # dates are shown


async def test_multi_hop_question_needs_the_expansion(service: MemoryService) -> None:
    t0 = datetime(2023, 1, 2, 9, tzinfo=UTC)
    filler = [
        "Ben walks to work every morning.",
        "The dog park near Ben's house closed for repairs.",
        "Ben's sister has a grey cat.",
        "Ben's dog sleeps on the sofa all afternoon.",
        "Ben cooked pasta for his neighbours.",
        "Ben thinks dogs are better than cats.",
    ]
    events = [event("b0", "Ben", "I adopted a dog and named him Pixel.", t0, session="adoption")]
    events += [event(f"f{i}", "Ben", text, t0 + timedelta(days=i + 1), session=f"f{i}") for i, text in enumerate(filler)]
    events.append(event("b9", "Ann", "Pixel won first prize at the county fair!", t0 + timedelta(days=30), session="fair"))
    await service.ingest(events, wait=True)
    scope = Scope(user_id="u1")
    query = "What did the dog Ben adopted achieve?"
    service.retriever.candidates = 2
    plain = replace(analyze(query), candidates=2, expand=False)
    expanded = replace(plain, expand=True)

    def cites(result, event_id: str) -> bool:
        return any(event_id in c.unit.source_event_ids for c in result.candidates)

    without = await service.retriever.retrieve(scope, query, analysis=plain)
    assert cites(without, "b0") and not cites(without, "b9")
    with_expansion = await service.retriever.retrieve(scope, query, analysis=expanded)
    assert cites(with_expansion, "b9"), [(c.unit.text, c.score, c.dense) for c in with_expansion.candidates]
    assert "expand_ms" in with_expansion.timings_ms


def candidate(unit_id: int, text: str, vector: np.ndarray, score: float) -> Candidate:
    when = datetime(2023, 5, 1, tzinfo=UTC) + timedelta(hours=unit_id)
    unit = MemoryUnit(
        id=unit_id, tenant="local", user_id="u", text=text, source_event_ids=[f"e{unit_id}"], valid_from=when,
        event_time=when, compressor="test", compressor_version="1", hash=str(unit_id), created_at=when, updated_at=when,
    )
    return Candidate(unit=unit, score=score, dense=score, vector=vector)


def test_a_redundant_unit_is_skipped(embedder) -> None:
    texts = [
        "Maria bought a red bicycle at the Sunday market.",
        "Maria bought a red bicycle at the Sunday market!",
        "At the Sunday market Maria got herself a red bicycle.",
        "Maria's brother repairs old cars in his garage.",
    ]
    vectors = embedder.embed(texts)
    pool = [candidate(i + 1, t, v, s) for i, (t, v, s) in enumerate(zip(texts, vectors, [1.0, 0.95, 0.8, 0.6], strict=True))]
    analysis = analyze("What did Maria buy at the market?")

    def line(text: str) -> int:
        return count_tokens(f"- {text}") + 1

    def group(c: Candidate) -> tuple[str, int]:
        return "2023-05-01", 0

    roomy = select(pool, analysis, 1000, line, group, lambda c: c.unit.text)
    chosen = [p.candidate.unit.id for p in roomy]
    assert 1 in chosen and 2 not in chosen  # the exact restatement adds nothing
    assert 4 in chosen

    two = line(texts[0]) + max(line(t) for t in texts[1:])
    mmr = SelectionParams(redundancy=1.0)
    tight = select(pool, analysis, two, line, group, lambda c: c.unit.text, mmr)
    assert [p.candidate.unit.id for p in tight] == [1, 4]  # relevance minus redundancy beats the paraphrase

    no_mmr = select(pool, analysis, two, line, group, lambda c: c.unit.text, SelectionParams(redundancy=0.0, duplicate=2.0, novelty=0.0))
    assert [p.candidate.unit.id for p in no_mmr] == [1, 2]


def test_long_units_keep_their_query_sentences() -> None:
    vector = np.ones(4, dtype=np.float32) / 2
    text = (
        "Tom said: I spent the whole weekend fixing the fence in the back garden. "
        "The weather was awful and my neighbour kept talking about football. "
        "Anyway, I finally ordered the blue kayak I wanted."
    )
    question = analyze("Which kayak did Tom order?")
    short = pack([candidate(1, text, vector, 1.0)], 200, analysis=question)
    assert not short.pieces[0].trimmed and "football" in short.context  # under 64 tokens: shown whole
    longer = text + (
        " My sister visited on Sunday with her two dogs and we walked along the river until it got dark. "
        "Then we cooked pasta, watched an old film about pirates and argued about which one of us had the worse week."
    )
    packed = pack([candidate(1, longer, vector, 1.0)], 200, analysis=question)
    assert packed.pieces[0].trimmed
    assert "kayak" in packed.context and "football" not in packed.context and "pirates" not in packed.context
    assert "Tom: " in packed.context and "Tom said:" not in packed.context


async def test_an_irrelevant_query_returns_empty(service: MemoryService) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest(
        [
            event("c1", "Caroline", "I went to a support group yesterday and it was so powerful.", t0),
            event("c2", "Melanie", "I painted a sunrise over the lake last year.", t0),
        ],
        wait=True,
    )
    for fmt in ("text", "json", "messages"):
        answer = await service.context(Scope(user_id="u1"), "What is the boiling point of tungsten in kelvin?", 256, fmt)
        assert answer.empty and answer.context == "" and answer.tokens == 0 and answer.chosen == []
        assert answer.best_relevance < service.settings.empty_threshold
    relevant = await service.context(Scope(user_id="u1"), "What did Melanie paint?", 256)
    assert not relevant.empty and relevant.best_relevance >= service.settings.empty_threshold


async def test_formats_and_stats(service: MemoryService) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest(
        [
            event("d1", "Caroline", "I went to a support group yesterday and it was so powerful.", t0),
            event("d2", "Melanie", "I painted a sunrise over the lake last year.", t0 + timedelta(minutes=1)),
            event("d3", "Melanie", "We went camping by the lake in June.", t0 + timedelta(days=40)),
        ],
        wait=True,
    )
    scope, query = Scope(user_id="u1"), "What did Melanie do at the lake?"
    text = await service.context(scope, query, 256)
    lines = text.context.splitlines()
    assert lines[0] == "Memories (oldest first):"
    dates = [line for line in lines if not line.startswith("- ")][1:]
    assert dates == sorted(dates) and len(dates) == len(set(dates))  # one header per date, oldest first
    assert text.tokens == count_tokens(text.context) <= 256
    assert text.history_tokens > 0 and text.compression_ratio == text.history_tokens / text.tokens
    assert {"analysis_ms", "search_ms", "fuse_ms", "pack_ms"} <= set(text.timings_ms)

    as_json = await service.context(scope, query, 256, "json")
    entries = json.loads(as_json.context)
    assert [e["date"] for e in entries] == sorted(e["date"] for e in entries)
    assert all(set(e) == {"date", "text"} for e in entries)

    messages = await service.context(scope, query, 256, "messages")
    assert messages.messages is not None and len(messages.messages) == 1
    assert messages.messages[0]["role"] == "system" and messages.messages[0]["content"] == messages.context
    assert messages.tokens == count_tokens(messages.context) <= 256


async def test_symbolic_lookups_are_scope_filtered(service: MemoryService) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest(
        [
            event("e1", "Gina", "I opened my dance studio in May.", t0, user="u1"),
            event("e2", "Jon", "I lost my job at the bank.", t0 + timedelta(days=60), user="u1"),
            event("e3", "Gina", "I opened my dance studio in May.", t0, user="u2"),
        ],
        wait=True,
    )
    store, mine = service.store, Scope(user_id="u1")
    units = {u.source_event_ids[0]: u.id for u in await service.list_memories(mine)}
    assert await store.search.unit_ids_mentioning(mine, ["gina"]) == [units["e1"]]
    assert await store.search.unit_ids_mentioning(mine, ["Jon", "nobody"]) == [units["e2"]]
    in_may = await store.search.unit_ids_in_time_range(
        mine, datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC)
    )
    assert in_may == [units["e1"]]
    assert await store.search.unit_ids_in_time_range(mine, datetime(2023, 6, 1, tzinfo=UTC), None) == [units["e2"]]
    assert [i for i, _, _ in await store.search.unit_timeline(mine)] == [units["e1"], units["e2"]]


async def test_rest_context_formats_and_bad_format(tmp_path: Path, embedder) -> None:
    settings = Settings(data_dir=tmp_path / "api")
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    app = create_app(settings, service=service)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            events = [
                {"user_id": "ann", "role": "user", "speaker": "Ann", "content": "I adopted a cat today, her name is Miso!",
                 "timestamp": "2024-03-13T10:00:00Z"},
            ]
            assert (await client.post("/v1/events", json={"events": events, "wait": True})).status_code == 202
            body = {"query": "What is my cat called?", "user_id": "ann", "budget_tokens": 128, "format": "messages"}
            answer = (await client.post("/v1/context", json=body)).json()
            assert not answer["empty"] and "Miso" in answer["context"]
            assert answer["messages"] == [{"role": "system", "content": answer["context"]}]
            stats = answer["stats"]
            assert stats["units_chosen"] == len(answer["units"]) == 1 and stats["tokens"] == answer["tokens"]
            assert stats["history_tokens"] > 0 and stats["best_relevance"] >= settings.empty_threshold
            assert answer["units"][0]["shown"] and "pack_ms" in stats["timings_ms"]

            plain = (await client.post("/v1/context", json={**body, "format": "text"})).json()
            assert plain["messages"] is None and plain["context"].startswith("Memories (oldest first):\n2024-03-13:")

            bad = await client.post("/v1/context", json={**body, "format": "yaml"})
            assert bad.status_code == 422 and "format" in bad.text
    finally:
        await service.close()


async def test_the_learned_ranker_ranks_with_the_packaged_model(settings: Settings, embedder) -> None:
    settings = settings.model_copy(update={"ranker": "default"})
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        assert service.retriever.ranker is not None  # the packaged model loads
        day = datetime(2023, 5, 8, 10, tzinfo=UTC)
        await service.ingest(
            [
                event("r1", "Ann", "I adopted a grey kitten called Pixel from the shelter.", day),
                event("r2", "Bob", "I started learning the cello at the community school.", day + timedelta(minutes=1)),
                event("r3", "Ann", "Pixel knocked my coffee off the desk this morning.", day + timedelta(days=3)),
                event("r4", "Bob", "We drove to the coast for the weekend.", day + timedelta(days=5)),
            ],
            wait=True,
        )
        scope = Scope(user_id="u1")
        result = await service.retriever.retrieve(scope, "What is the name of Ann's kitten?")
        assert "rank_ms" in result.timings_ms
        assert all(0.0 < c.score < 1.1 for c in result.candidates)  # a probability, times decay's +/-10%
        assert result.candidates[0].unit.source_event_ids == ["r1"]
        answer = await service.context(scope, "What is the name of Ann's kitten?", budget_tokens=64)
        assert not answer.empty and "Pixel" in answer.context
    finally:
        await service.close()


async def test_mention_lookup_is_exact_and_newest_first(service: MemoryService) -> None:
    """The full-text index only narrows the rows: a unit whose text names someone without listing
    them stays out, a name of stop words or of no word at all (nothing to index) is still found,
    and `limit` keeps the newest."""
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest(
        [event(f"g{n}", "Gina", f"I opened dance studio number {n} today.", t0 + timedelta(days=n)) for n in range(4)],
        wait=True,
    )
    store, scope = service.store, Scope(user_id="u1")
    units = sorted(await service.list_memories(scope), key=lambda u: u.id)
    assert len(units) == 4 and all("Gina" in u.persons for u in units)
    found = await store.search.unit_ids_mentioning(scope, ["GINA"])
    assert found == sorted((u.id for u in units), reverse=True)
    assert await store.search.unit_ids_mentioning(scope, ["gina"], limit=2) == found[:2]
    assert await store.search.unit_ids_mentioning(scope, ["studio"]) == []  # in the text, not a name
    async with service.store.session() as session:  # as written, search text carries the entities
        await session.execute(
            update(MemoryUnitRow)
            .where(MemoryUnitRow.id == units[0].id)
            .values(entities=["The Who", "++"], search_text=units[0].text + " The Who ++")
        )
        await session.commit()
    assert await store.search.unit_ids_mentioning(scope, ["the who"]) == [units[0].id]
    assert await store.search.unit_ids_mentioning(scope, ["++"]) == [units[0].id]  # no word to index: the scan
    async with service.store.session() as session:  # case folds beyond ASCII on both backends
        await session.execute(
            update(MemoryUnitRow)
            .where(MemoryUnitRow.id == units[1].id)
            .values(persons=["Gina", "ÉLODIE Łukasz"], search_text=units[1].text + " ÉLODIE Łukasz")
        )
        await session.commit()
    assert await store.search.unit_ids_mentioning(scope, ["élodie łukasz"]) == [units[1].id]
    assert await store.search.unit_ids_mentioning(scope, ["Élodie"]) == []  # a listed name, not part of one
    past = await store.search.unit_ids_mentioning(scope, ["gina"], as_of=t0 + timedelta(days=1, hours=1))
    assert set(past) <= set(found)
    latest = await store.search.unit_ids_in_time_range(scope, t0, t0 + timedelta(days=10), limit=3)
    assert len(latest) == 3 and units[0].id not in latest  # the latest three by event time


async def test_another_tenants_writes_keep_a_scopes_cached_ids(service: MemoryService) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest([event("a1", "Ann", "I adopted a grey kitten.", t0)], wait=True)
    mine = Scope(user_id="u1")
    assert "kitten" in (await service.context(mine, "Who adopted a kitten?", 64)).context
    cached = service.retriever.scopes.get(mine)
    assert cached is not None and not cached.pending
    await service.ingest([event("b1", "Bo", "I bought a bike.", t0)], tenant="other", wait=True)
    await service.index_sync.catch_up()
    assert service.retriever.scopes.get(mine) is cached and not cached.pending  # nothing of this tenant changed
    await service.ingest([event("a2", "Ann", "I adopted a second kitten.", t0 + timedelta(days=1))], wait=True)
    await service.index_sync.catch_up()
    assert cached.pending  # this tenant changed: patched when next asked, not read again
    assert "second kitten" in (await service.context(mine, "Who adopted a second kitten?", 64)).context
    assert service.retriever.scopes.get(mine) is cached and not cached.pending


async def test_a_scope_read_while_changes_arrive_is_used_once_not_kept(service: MemoryService) -> None:
    """A change caught up while a scope's ids are being read may be missing from what was read,
    and no later change would say so: such a read answers its query but is not cached."""
    from stores.sql.changes import UnitChange

    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    await service.ingest([event("a1", "Ann", "I adopted a grey kitten.", t0)], wait=True)
    await service.index_sync.catch_up()
    cache, mine, read = service.retriever.scopes, Scope(user_id="u1"), service.store.search.unit_ids_in_scope

    async def read_while_a_change_arrives(scope, as_of=None):  # type: ignore[no-untyped-def]
        ids = await read(scope, as_of)
        cache.follow([UnitChange(seq=10**9, tenant=scope.tenant, unit_id=10**9, op="upsert")])
        return ids

    service.store.search.unit_ids_in_scope = read_while_a_change_arrives  # type: ignore[method-assign]
    try:
        assert len(await cache.allowed(mine)) == 1 and cache.get(mine) is None
    finally:
        service.store.search.unit_ids_in_scope = read  # type: ignore[method-assign]
    assert len(await cache.allowed(mine)) == 1 and cache.get(mine) is not None


async def test_patched_scope_caches_equal_a_fresh_read_after_every_kind_of_write(service: MemoryService) -> None:
    """Inserts in old and new sessions, supersession (a closed unit), erasure of a unit and of an
    event, and another user's writes: after each, every cached scope's ids and timeline are what
    reading the scope afresh gives."""
    from memory_service.context.scope_cache import Timeline

    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    scopes = [Scope(user_id="u1"), Scope(user_id="u1", session_id="s1"), Scope(user_id="u2"), Scope(agent_id="bot")]

    def event(eid: str, speaker: str, text: str, when: datetime, user: str = "u1", session: str = "s1") -> EventIn:
        return EventIn(event_id=eid, user_id=user, agent_id="bot", session_id=session, role="user", speaker=speaker,
                       content=text, timestamp=when)

    async def check() -> None:
        await service.index_sync.catch_up()
        for scope in scopes:
            allowed = await service.retriever.scopes.allowed(scope)
            assert allowed.sorted_ids.tolist() == sorted(await service.store.search.unit_ids_in_scope(scope)), scope
            everything = await service.store.search.unit_ids_in_scope(scope)
            neighbours = (await service.retriever.scopes.timeline(scope)).neighbours_of(everything)
            fresh = Timeline.of(await service.store.search.unit_timeline(scope))
            assert neighbours == fresh.neighbours_of(everything) and len(neighbours) == len(fresh), scope
            assert not service.retriever.scopes.get(scope).pending

    lines = ["I live in Boston with my two cats.", "I started a pottery class on Tuesdays.",
             "My sister visited from Lisbon.", "I bought a red bicycle for commuting."]
    await service.ingest([event(f"a{n}", "Ann", line, t0 + timedelta(hours=n)) for n, line in enumerate(lines)], wait=True)
    await check()
    await service.ingest(
        [event("b0", "Ann", "I moved to Denver last week, Boston is behind me now.", t0 + timedelta(days=90), session="s2"),
         event("b1", "Ann", "The pottery class moved to Thursdays.", t0 + timedelta(hours=1, minutes=30)),
         event("c0", "Cy", "I repair old radios.", t0, user="u2")],
        wait=True,
    )
    await check()
    await service.consolidate(Scope(user_id="u1", agent_id="bot"))  # the Boston fact is superseded: closed, out of every scope
    await check()
    units = await service.list_memories(Scope(user_id="u1"))
    assert any(u.valid_to is not None for u in await service.store.list_units(Scope(user_id="u1"), include_invalid=True))
    assert await service.delete_memory(units[0].id)
    await check()
    assert await service.erase_event("a2") is not None
    await check()
    await service.ingest([event("a9", "Ann", "I adopted a parrot named Kiwi.", t0 + timedelta(hours=2, minutes=30))], wait=True)
    await check()


async def test_lexical_search_leaves_out_the_commonest_terms_past_its_postings_budget(service: MemoryService) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    texts = [f"I worked in the garden on plot {n}." for n in range(24)] + [
        f"I practised the violin for {n} hours." for n in (1, 2, 3)
    ]
    await service.ingest([event(f"e{n}", "Ann", text, t0 + timedelta(hours=n)) for n, text in enumerate(texts)], wait=True)
    store, scope = service.store, Scope(user_id="u1")
    if service.store.engine.dialect.name == "postgresql":
        async with service.store.engine.begin() as conn:  # the planner statistics the estimate reads
            await conn.execute(text_sql("ANALYZE memory_units"))
    assert await store.search.affordable_terms(["garden", "violin"]) == ["garden", "violin"]  # 27 <= 10,000
    store.search.max_postings = 10
    store.search._pg_frequencies = None
    assert await store.search.affordable_terms(["garden", "violin"]) == ["violin"]
    assert await store.search.affordable_terms(["garden"]) == ["garden"]  # the last term always stays
    found = await store.search.lexical(scope, ["garden", "violin"], 50)
    units = {u.id: u for u in await service.list_memories(scope, 100)}
    assert len(found) == 3 and all("violin" in units[i].text for i, _ in found)


async def test_a_term_past_the_postings_budget_alone_is_ranked_over_its_newest_matches_in_the_scope(
    service: MemoryService,
) -> None:
    t0 = datetime(2023, 5, 8, 13, tzinfo=UTC)
    mine = [event(f"e{n}", "Ann", f"I watered the garden bed number {n}.", t0 + timedelta(hours=n)) for n in range(12)]
    theirs = [event(f"o{n}", "Bo", f"The garden gate {n} needs paint.", t0 + timedelta(days=1, hours=n), user="u2")
              for n in range(4)]
    await service.ingest(mine, wait=True)
    await service.ingest(theirs, wait=True)  # another user's matches, newer than all of mine
    store, scope = service.store, Scope(user_id="u1")
    if service.store.engine.dialect.name == "postgresql":
        async with service.store.engine.begin() as conn:
            await conn.execute(text_sql("ANALYZE memory_units"))
    units = await service.list_memories(scope, 100)
    gardens = sorted((u.id for u in units if "garden" in u.text), reverse=True)
    assert len(gardens) == 12
    everything = await store.search.lexical(scope, ["garden"], 50)
    assert sorted(i for i, _ in everything) == sorted(gardens)  # under the budget: every match is ranked
    store.search.max_postings = 6
    store.search.newest_postings = 5
    store.search._pg_frequencies = None
    found = await store.search.lexical(scope, ["garden"], 50)
    assert sorted(i for i, _ in found) == sorted(gardens[:5])  # the scope's newest five, not the other user's
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    assert [i for i, _ in await store.search.lexical(scope, ["garden"], 2)] == [i for i, _ in found][:2]
    # Given the scope's size, PostgreSQL first looks among the recent ids only (`_recent_span`),
    # and everywhere when too few are there: the same answers either way.
    assert await store.search.lexical(scope, ["garden"], 3, scope_units=12) == found[:3]
    assert await store.search.lexical(scope, ["garden"], 50, scope_units=10**6) == found
