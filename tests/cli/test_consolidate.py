"""`memory-service consolidate` on a database filled by `memory-service ingest`."""

from __future__ import annotations

import json
import sqlite3
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


def test_rebuild_statements_rewrites_keys_and_refuses_bad_input(data_dir: Path, tmp_path: Path) -> None:
    home = [{**EVENTS[3], "content": "I live in Porto with my partner."}, {**EVENTS[0], "session_id": "s2"}]
    source = tmp_path / "home.jsonl"
    source.write_text("\n".join(json.dumps(e) for e in home) + "\n")
    assert invoke("ingest", str(source)).exit_code == 0
    assert invoke("consolidate", "--user-id", "ann").exit_code == 0
    keys = count_rows(data_dir, "unit_statements")
    assert keys >= 1
    with sqlite3.connect(data_dir / "memory.db") as conn:  # consolidated before migration 0007: no keys
        conn.execute("DELETE FROM unit_statements")
    rebuilt = invoke("consolidate", "--rebuild-statements", "--tenant", "local")
    assert rebuilt.exit_code == 0, rebuilt.output
    report = json_out(rebuilt)
    assert report["units"] == 2 and report["keys"] == keys == count_rows(data_dir, "unit_statements")
    assert report["tenants_marked"] == ["local"] and report["version"] >= 1
    assert json_out(invoke("consolidate", "--rebuild-statements", "--user-id", "ann"))["tenants_marked"] == []

    cases = [
        (["--rebuild-statements"], 1, "nothing to rebuild: give --tenant, --user-id/--agent-id or --all-tenants"),
        (["--rebuild-statements", "--tenant", "nobody"], 1, "unknown tenant 'nobody': it has no memory units"),
        (["--rebuild-statements", "--user-id", "bo"], 1, "no memory units for tenant=local,user_id=bo"),
        (["--rebuild-statements", "--tenant", "not a tenant"], 2, "invalid tenant 'not a tenant'"),
        (["--rebuild-statements", "--all-tenants", "--tenant", "local"], 2, "--all-tenants takes no --tenant"),
        (["--all-tenants"], 2, "--all-tenants goes with --rebuild-statements only"),
        (["--rebuild-statements", "--tenant", "local", "--batch-size", "0"], 2, "--batch-size"),
    ]
    for args, code, message in cases:
        result = invoke("consolidate", *args)
        assert result.exit_code == code and said(result.stderr, message), (args, result.output)
    assert count_rows(data_dir, "unit_statements") == keys
