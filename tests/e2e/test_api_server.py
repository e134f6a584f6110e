"""The REST API end to end: a real `memory-service serve` process, driven over HTTP with httpx."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.server import running_server

pytestmark = pytest.mark.slow


EVENTS = [
    {"event_id": "a1", "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann",
     "content": "I adopted a grey cat named Miso last week.", "timestamp": "2024-03-14T10:00:00Z"},
    {"event_id": "a2", "user_id": "ann", "session_id": "s1", "role": "assistant", "speaker": "Bot",
     "content": "Congratulations on the new cat!", "timestamp": "2024-03-14T10:00:05Z"},
    {"event_id": "a3", "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann",
     "content": "My sister Julia lives in Lisbon and works as an architect.", "timestamp": "2024-03-14T10:01:00Z"},
    {"event_id": "a4", "user_id": "ann", "agent_id": "helper", "session_id": "s2", "role": "tool",
     "content": "", "timestamp": "2024-03-15T09:00:00Z",
     "tool": {"name": "get_weather", "arguments": {"city": "Lisbon"}, "result": {"temp_c": 19, "sky": "sunny"}}},
]


def test_rest_api_end_to_end_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_server(data_dir) as (url, process):
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/openapi.json").json()["info"]["title"] == "memory-service"

            response = client.post("/v1/events", json={"events": EVENTS, "wait": True})
            assert response.status_code == 202
            assert response.json() == {"accepted": 4, "event_ids": ["a1", "a2", "a3", "a4"]}

            events = client.get("/v1/events", params={"user_id": "ann"}).json()["events"]
            assert [e["event_id"] for e in events] == ["a1", "a2", "a3", "a4"]
            assert events[3]["tool"]["name"] == "get_weather"

            memories = client.get("/v1/memories", params={"user_id": "ann", "limit": 100}).json()["memories"]
            assert memories and all(m["source_event_ids"] for m in memories)
            tool_unit = next(m for m in memories if m["source_event_ids"] == ["a4"])
            assert "get_weather" in tool_unit["text"] and "Lisbon" in tool_unit["text"]
            assert tool_unit["compressor"] == "extractive"

            query = {"query": "What is the name of Ann's cat?", "user_id": "ann", "budget_tokens": 200}
            first = client.post("/v1/context", json=query).json()
            assert not first["empty"] and "Miso" in first["context"]
            assert first["tokens"] <= 200
            assert first["units"][0]["source_event_ids"]
            as_json = client.post("/v1/context", json={**query, "format": "json"}).json()
            assert as_json["context"].startswith("[")

            session_only = client.post(
                "/v1/context", json={"query": "weather", "user_id": "ann", "session_id": "s2"}
            ).json()
            assert {u["source_event_ids"][0] for u in session_only["units"]} == {"a4"}

            one = memories[0]
            assert client.get(f"/v1/memories/{one['id']}").json()["text"] == one["text"]

            julia = next(m for m in memories if m["source_event_ids"] == ["a3"])
            assert client.delete(f"/v1/memories/{julia['id']}").json() == {"deleted": True, "id": julia["id"]}
            assert client.get(f"/v1/memories/{julia['id']}").status_code == 404
            after_delete = client.post("/v1/context", json={**query, "query": "Where does Julia live?"}).json()
            assert julia["id"] not in [u["id"] for u in after_delete["units"]]
            before_kill = client.post("/v1/context", json=query).json()
            assert "Julia" not in before_kill["context"]

        # Killed without a chance to save its FAISS index.
        process.send_signal(signal.SIGKILL)
        process.wait()

    with running_server(data_dir) as (url, _process), httpx.Client(base_url=url, timeout=60) as client:
        again = client.post("/v1/context", json=query).json()
        assert again["context"] == before_kill["context"]
        assert [u["id"] for u in again["units"]] == [u["id"] for u in before_kill["units"]]
        assert client.get(f"/v1/memories/{julia['id']}").status_code == 404
        # Re-sending the same events is idempotent.
        client.post("/v1/events", json={"events": EVENTS, "wait": True})
        assert len(client.get("/v1/events", params={"user_id": "ann"}).json()["events"]) == 4
