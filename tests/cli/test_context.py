"""`memory-service context` on a database filled by `memory-service ingest`."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import invoke, json_out, said


def test_context_prints_the_relevant_memories(ingested: Path) -> None:
    text = invoke("context", "When does my flight to Oslo leave?", "--user-id", "ann", "--budget", "128")
    assert text.exit_code == 0, text.output
    assert "Oslo" in text.stdout and "3 June 2024" in text.stdout

    as_json = invoke("context", "What is my cat called?", "--user-id", "ann", "--session-id", "s2", "--json")
    assert as_json.exit_code == 0, as_json.output
    response = json_out(as_json)
    assert not response["empty"] and all(u["source_event_ids"] == ["f4"] for u in response["units"])
    assert "Miso" in response["context"]

    messages = invoke("context", "Which hotel?", "--user-id", "ann", "--format", "messages", "--json")
    assert messages.exit_code == 0 and isinstance(json_out(messages)["messages"], list)

    before = invoke("context", "Oslo flight", "--user-id", "ann", "--as-of", "2020-01-01T00:00:00", "--json")
    assert before.exit_code == 0 and json_out(before)["empty"] is True


def test_context_says_when_nothing_is_relevant(ingested: Path) -> None:
    result = invoke("context", "flight", "--user-id", "somebody-else")
    assert result.exit_code == 0 and result.stdout == ""
    assert said(result.stderr, "nothing relevant in memory for this query")


def test_context_rejects_bad_input(data_dir: Path) -> None:
    cases = [
        (["flight"], 1, "scope missing: give --user-id or --agent-id"),
        (["  ", "--user-id", "ann"], 1, "query is empty"),
        (["flight", "--user-id", "ann", "--format", "yaml"], 1, "unknown --format 'yaml'"),
        (["flight", "--user-id", "ann", "--budget", "0"], 2, "Invalid value for '--budget'"),
        (["flight", "--user-id", "ann", "--as-of", "yesterday"], 2, "Invalid value for '--as-of'"),
    ]
    for args, code, message in cases:
        result = invoke("context", *args)
        assert result.exit_code == code and said(result.stderr, message), (args, result.output)
