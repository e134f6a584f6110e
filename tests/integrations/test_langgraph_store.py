"""MemoryServiceStore against LangGraph's BaseStore contract, on the real service (in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, MatchCondition, PutOp, SearchOp

from api.inprocess import InProcessService
from memory_service.integrations.langgraph import MemoryServiceStore, item_text, matches
from memory_service.settings import Settings


@pytest.fixture
def store(local: InProcessService) -> Iterator[MemoryServiceStore]:
    # A fresh key prefix per test: tests share the module's service but not each other's items.
    store = MemoryServiceStore(local.client(), local.async_client(), key_prefix=f"t{id(object())}")
    yield store


def test_contract_put_get_search_delete_list(settings: Settings, embedder: object) -> None:
    """The whole contract once per SQL backend."""
    with InProcessService(settings, embedder=embedder) as local:  # type: ignore[arg-type]
        store = MemoryServiceStore(local.client(), local.async_client())
        ann, bob = ("memories", "ann"), ("memories", "bob")
        store.put(ann, "cat", {"content": "Ann adopted a cat named Miso.", "topic": "pets", "stars": 5})
        store.put(ann, "tea", {"content": "Ann drinks green tea every morning.", "topic": "food", "stars": 3})
        store.put((*ann, "work"), "job", {"content": "Ann works as a nurse in Porto.", "topic": "work", "stars": 4})
        store.put(bob, "chess", {"content": "Bob plays chess on Sundays.", "topic": "hobbies", "stars": 2})

        cat = store.get(ann, "cat")
        assert cat is not None and cat.value["content"] == "Ann adopted a cat named Miso."
        assert cat.namespace == ann and cat.key == "cat" and cat.created_at == cat.updated_at
        assert store.get(ann, "missing") is None and store.get(bob, "cat") is None

        # Listing (no query): a prefix covers nested namespaces; oldest first; filters; limit/offset.
        assert [i.key for i in store.search(ann)] == ["cat", "tea", "job"]
        assert [i.key for i in store.search(("memories",))] == ["cat", "tea", "job", "chess"]
        assert [i.key for i in store.search((*ann, "work"))] == ["job"]
        assert [i.key for i in store.search(ann, filter={"topic": "food"})] == ["tea"]
        assert [i.key for i in store.search(("memories",), filter={"stars": {"$gte": 4}})] == ["cat", "job"]
        assert [i.key for i in store.search(("memories",), filter={"stars": {"$ne": 5}}, limit=2, offset=1)] == ["job", "chess"]
        assert [i.key for i in store.search(("memories",), limit=1, offset=3)] == ["chess"]

        # Query search: the service's retrieval ranks; scores come back; the prefix scopes it.
        found = store.search(ann, query="What pet does Ann have?")
        assert found[0].key == "cat" and found[0].score is not None and found[0].score > 0
        assert "chess" not in {i.key for i in found}
        assert [i.key for i in store.search(("memories",), query="chess on Sundays", limit=1)] == ["chess"]
        nested = store.search(ann, query="Where does Ann work?")
        assert "job" in {i.key for i in nested}
        assert all(i.namespace == (*ann, "work") for i in store.search((*ann, "work"), query="Ann green tea nurse"))
        assert [i.key for i in store.search(ann, query="Ann", filter={"topic": "food"})] == ["tea"]
        both = store.search(ann, query="Ann cat tea nurse", limit=10)
        assert [i.key for i in store.search(ann, query="Ann cat tea nurse", limit=1, offset=1)] == [both[1].key]

        # Update: the value is replaced, created_at kept, the old text no longer found.
        store.put(ann, "tea", {"content": "Ann switched to black coffee.", "topic": "food", "stars": 3})
        tea = store.get(ann, "tea")
        assert tea is not None and tea.value["content"] == "Ann switched to black coffee."
        assert tea.created_at < tea.updated_at
        units = [m.text for m in local.client().iter_memories(agent_id="memories", user_id="ann")]
        assert any("coffee" in t for t in units) and not any("green tea" in t for t in units)

        # Namespaces: nested, prefix/suffix conditions with wildcards, max_depth, limit/offset.
        assert store.list_namespaces() == [ann, (*ann, "work"), bob]
        assert store.list_namespaces(prefix=ann) == [ann, (*ann, "work")]
        assert store.list_namespaces(suffix=("work",)) == [(*ann, "work")]
        assert store.list_namespaces(prefix=("memories", "*")) == [ann, (*ann, "work"), bob]
        assert store.list_namespaces(prefix=("*", "bob")) == [bob]
        assert store.list_namespaces(max_depth=2) == [ann, bob]
        assert store.list_namespaces(max_depth=1) == [("memories",)]
        assert store.list_namespaces(limit=1, offset=1) == [(*ann, "work")]

        # Delete: gone from get, listing, search and the service's units.
        store.delete(ann, "cat")
        assert store.get(ann, "cat") is None
        assert "cat" not in {i.key for i in store.search(ann)}
        assert "cat" not in {i.key for i in store.search(ann, query="What pet does Ann have?")}
        assert not any("Miso" in m.text for m in local.client().iter_memories(agent_id="memories"))
        store.delete(ann, "cat")  # deleting twice is fine
        store.delete((*ann, "work"), "job")
        assert store.list_namespaces() == [ann, bob]


async def test_async_ops_and_batches(store: MemoryServiceStore) -> None:
    ns = ("prefs", "cy")
    await store.aput(ns, "a", {"content": "Cy prefers window seats on flights."})
    await store.aput(ns, "b", {"content": "Cy is allergic to peanuts."})
    item = await store.aget(ns, "a")
    assert item is not None and item.value["content"].startswith("Cy prefers")
    found = await store.asearch(ns, query="Which food allergy does Cy have?")
    assert found and found[0].key == "b"
    assert await store.alist_namespaces(prefix=("prefs",)) == [ns]

    # A batch: reads see the state before the batch; puts apply last, the last one per key wins.
    results = await store.abatch([
        PutOp(ns, "c", {"content": "first"}),
        GetOp(ns, "c"),
        PutOp(ns, "c", {"content": "Cy's favourite colour is teal."}),
        SearchOp(ns, filter={"content": "Cy is allergic to peanuts."}),
        ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("prefs",)),)),
        PutOp(ns, "b", None),
    ])
    assert results[1] is None and [i.key for i in results[3]] == ["b"] and results[4] == [ns]
    assert (await store.aget(ns, "c")).value == {"content": "Cy's favourite colour is teal."}  # type: ignore[union-attr]
    assert await store.aget(ns, "b") is None
    await store.adelete(ns, "a")
    assert [i.key for i in await store.asearch(ns)] == ["c"]


def test_sync_and_async_see_the_same_items(store: MemoryServiceStore) -> None:
    store.put(("s", "u1"), "k", {"content": "U1 owns a red bicycle."})
    assert asyncio.run(store.aget(("s", "u1"), "k")) == store.get(("s", "u1"), "k")


def test_namespace_scope_mapping(local: InProcessService) -> None:
    store = MemoryServiceStore(local.client(), namespace_scope=("user_id", "session_id"), key_prefix="map")
    store.put(("dana", "s1", "notes"), "k", {"content": "Dana's flight leaves at 9am."})
    event = local.client().get_event(store.event_id(("dana", "s1", "notes"), "k"))
    assert (event.user_id, event.agent_id, event.session_id) == ("dana", None, "s1")
    assert event.event_id == "map/dana/s1/notes/#k"
    # Labels are percent-encoded: "/" or "#" inside a label cannot address another namespace.
    assert store.event_id(("a/b", "c#d"), "k/1") == "map/a%2Fb/c%23d/#k%2F1"
    store.put(("a/b",), "k", {"content": "slash label"})
    assert store.get(("a/b",), "k") is not None and store.get(("a",), "k") is None
    # Only an async client: sync calls say so; async calls of a sync-only store run in a thread.
    with pytest.raises(RuntimeError, match="needs a MemoryClient"):
        MemoryServiceStore(async_client=local.async_client()).get(("x",), "k")
    assert asyncio.run(store.aget(("dana", "s1", "notes"), "k")) is not None


def test_invalid_namespaces_and_arguments(store: MemoryServiceStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"content": "x"})
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph",), "k", {"content": "x"})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp((), "k", {"content": "x"})])
    with pytest.raises(ValueError, match="needs a namespace prefix"):
        store.search((), query="anything")
    with pytest.raises(ValueError, match="too long"):
        store.put(("n",), "k" * 300, {"content": "x"})
    with pytest.raises(NotImplementedError):
        store.put(("n",), "k", {"content": "x"}, ttl=5)
    with pytest.raises(ValueError, match="namespace_scope"):
        MemoryServiceStore(store.client, namespace_scope=("session_id",))


def test_index_fields_choose_the_text(store: MemoryServiceStore, local: InProcessService) -> None:
    ns = ("docs", "eve")
    store.put(ns, "d", {"title": "Trip", "body": "Eve is flying to Oslo in May.", "secret": "zzz"}, index=["body"])
    event = local.client().get_event(store.event_id(ns, "d"))
    assert event.content == "Eve is flying to Oslo in May."
    assert store.search(ns, query="Where is Eve flying?")[0].key == "d"


def test_item_text_and_filters() -> None:
    assert item_text({"content": "Ann likes tea"}) == "Ann likes tea"
    assert item_text({"kind": "Profile", "content": {"name": "Ann", "age": 31}}) == "kind: Profile; content.name: Ann; content.age: 31"
    assert item_text({"a": {"b": ["x", "y"]}}, ["a.b[*]"]) == "x\ny"
    assert matches({"a": {"b": 1}, "n": 3}, {"a": {"b": 1}, "n": {"$gt": 2, "$lte": 3}})
    assert not matches({"n": "x"}, {"n": {"$gt": 1}})
    assert not matches({"tags": ["a"]}, {"tags": ["a", "b"]})
