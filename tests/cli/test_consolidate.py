"""`memory-service consolidate` on a database filled by `memory-service ingest`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import EVENTS, count_rows, invoke, json_out, said


def test_consolidate_merges_an_owners_duplicates(data_dir: Path, tmp_path: Path) -> None:
    twice = [EVENTS[3], {**EVENTS[3], "event_id": "f4-again", "session_id": "s3", "timestamp": "2024-05-09T18:00:00Z"}]
    source = tmp_path / "cat.jsonl"
    source.write_text("\n".join(json.dumps(e) for e in twice) + "\n")
    assert invoke("ingest", str(source)).exit_code == 0

    result = invoke("consolidate", "--user-id", "ann")
    assert result.exit_code == 0, result.output
    report = json_out(result)
    assert set(report) == {"examined", "merged", "superseded", "abstractions_created", "abstractions_retired"}
    assert report["examined"] >= 2 and report["merged"] >= 1
    assert count_rows(data_dir, "memory_units") >= 2  # merged units are closed, not deleted

    nobody = invoke("consolidate", "--agent-id", "no-such-agent")
    assert nobody.exit_code == 0 and json_out(nobody)["examined"] == 0


def test_consolidate_needs_an_owner(data_dir: Path) -> None:
    result = invoke("consolidate")
    assert result.exit_code == 1 and said(result.stderr, "scope missing: give --user-id or --agent-id")
    result = invoke("consolidate", "--session-id", "s1")
    assert result.exit_code == 2 and said(result.stderr, "No such option: --session-id")
