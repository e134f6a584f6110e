"""Two tenants (two API keys) through the Python client and the LangGraph store on one in-process service:
the same namespaces, keys and user ids, and nothing crosses."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.inprocess import InProcessService
from memory_service.client import AuthenticationFailed
from memory_service.integrations.langgraph import MemoryServiceStore
from memory_service.settings import Settings


def test_langgraph_stores_of_two_tenants_are_isolated(tmp_path: Path, embedder: object) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_key_cache_seconds=0)
    with InProcessService(settings, embedder=embedder) as local:  # type: ignore[arg-type]
        key_a, key_b = local.create_key("tenant-a"), local.create_key("tenant-b")
        a = MemoryServiceStore(local.client(api_key=key_a), local.async_client(api_key=key_a))
        b = MemoryServiceStore(local.client(api_key=key_b), local.async_client(api_key=key_b))
        ns = ("memories", "ann")
        a.put(ns, "pet", {"content": "Ann adopted a cat named Miso."})
        b.put(ns, "pet", {"content": "Ann adopted a parrot named Kiwi."})
        b.put(ns, "boat", {"content": "Ann sails a boat called Petrel."})

        assert a.get(ns, "pet").value["content"] == "Ann adopted a cat named Miso."  # type: ignore[union-attr]
        assert b.get(ns, "pet").value["content"] == "Ann adopted a parrot named Kiwi."  # type: ignore[union-attr]
        assert a.get(ns, "boat") is None
        assert [i.key for i in a.search(ns)] == ["pet"] and [i.key for i in b.search(ns)] == ["pet", "boat"]
        found = a.search(ns, query="What pet does Ann have? cat parrot Miso Kiwi boat Petrel")
        assert [i.value["content"] for i in found] == ["Ann adopted a cat named Miso."]
        assert a.list_namespaces() == [ns] and b.list_namespaces() == [ns]

        b.delete(ns, "pet")  # tenant b's delete leaves tenant a's item with the same namespace and key
        assert b.get(ns, "pet") is None and a.get(ns, "pet") is not None
        b.put(ns, "pet", {"content": "Ann adopted a goldfish named Bubbles."})
        assert "Miso" in a.get(ns, "pet").value["content"]  # type: ignore[union-attr]

        # Erasing the scope in tenant b erases nothing of tenant a.
        erased = local.client(api_key=key_b).erase_scope(agent_id="memories", user_id="ann")
        assert erased.events_deleted == 2 and erased.erased
        assert b.search(ns) == [] and [i.key for i in a.search(ns)] == ["pet"]
        assert [i.key for i in a.search(ns, query="cat Miso")] == ["pet"]

        with pytest.raises(AuthenticationFailed, match="missing API key"):
            local.client().list_events(user_id="ann")
        with pytest.raises(AuthenticationFailed, match="unknown or revoked"):
            local.client(api_key="ms_000000000000_" + "A" * 43).list_events(user_id="ann")
