"""The CLI end to end, as a user runs it: separate processes sharing a data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

LOCOMO_LIKE = [
    {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Jon",
            "speaker_b": "Gina",
            "session_1_date_time": "4:04 pm on 20 January, 2023",
            "session_1": [
                {"speaker": "Jon", "dia_id": "D1:1", "text": "Hey Gina! How's it going?"},
                {"speaker": "Gina", "dia_id": "D1:2", "text": "I lost my job at Door Dash this month."},
                {"speaker": "Jon", "dia_id": "D1:3", "text": "Sorry to hear that. I am opening a dance studio next month."},
            ],
            "session_2_date_time": "2:32 pm on 29 January, 2023",
            "session_2": [
                {"speaker": "Gina", "dia_id": "D2:1", "text": "Look at the new clothing line I designed!",
                 "img_url": ["http://x"], "blip_caption": "a photo of a rack of dresses"},
                {"speaker": "Jon", "dia_id": "D2:2", "text": "Wow, the dresses look great."},
            ],
        },
        "qa": [{"question": "When did Gina lose her job?", "answer": "January 2023", "evidence": ["D1:2"], "category": 2}],
    }
]


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMORY_SERVICE_DATA_DIR": str(data_dir), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "memory_service.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def count_events(data_dir: Path) -> int:
    db = data_dir / "memory.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_ingest_locomo_then_context(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    source = tmp_path / "locomo.json"
    source.write_text(json.dumps(LOCOMO_LIKE))

    ingest = cli(data_dir, "ingest", str(source), "--format", "locomo")
    assert ingest.returncode == 0, ingest.stderr
    summary = json.loads(ingest.stdout)
    assert summary["events"] == 5 and summary["new_events"] == 5 and summary["units_created"] >= 3

    answer = cli(data_dir, "context", "When did Gina lose her job?", "--user-id", "conv-x", "--json")
    assert answer.returncode == 0, answer.stderr
    response = json.loads(answer.stdout)
    assert not response["empty"]
    top = max(response["units"], key=lambda u: u["score"])
    assert top["source_event_ids"] == ["conv-x/D1:2"]
    assert "January 2023" in top["text"]

    text = cli(data_dir, "context", "What did Gina design?", "--user-id", "conv-x", "--budget", "64")
    assert text.returncode == 0 and "clothing line" in text.stdout
    assert "rack of dresses" in text.stdout  # the image caption is part of the unit

    again = cli(data_dir, "ingest", str(source), "--format", "locomo")
    assert json.loads(again.stdout)["new_events"] == 0
    assert count_events(data_dir) == 5


def test_ingest_jsonl_and_bad_input(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    good = {"user_id": "u", "role": "user", "speaker": "Ann", "content": "Ann's flight to Oslo leaves on 3 June 2024."}
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "content": "Ann booked the Radisson hotel."}) + "\n")
    assert cli(data_dir, "ingest", str(events)).returncode == 0
    assert count_events(data_dir) == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "role": "robot"}) + "\n")
    result = cli(data_dir, "ingest", str(bad))
    assert result.returncode == 1
    assert "bad.jsonl:2" in result.stderr and "role" in result.stderr
    assert count_events(data_dir) == 2  # nothing from the bad file, nothing lost

    not_json = tmp_path / "broken.jsonl"
    not_json.write_text("{not json\n")
    result = cli(data_dir, "ingest", str(not_json))
    assert result.returncode == 1 and "broken.jsonl:1" in result.stderr

    missing = cli(data_dir, "ingest", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "no such file" in missing.stderr

    not_locomo = cli(data_dir, "ingest", str(events), "--format", "locomo")
    assert not_locomo.returncode == 1 and "error" in not_locomo.stderr

    no_scope = cli(data_dir, "context", "flight")
    assert no_scope.returncode == 1 and "scope missing" in no_scope.stderr

    bad_budget = cli(data_dir, "context", "flight", "--user-id", "u", "--budget", "0")
    assert bad_budget.returncode == 2 and "budget" in bad_budget.stderr

    answer = cli(data_dir, "context", "When does the flight to Oslo leave?", "--user-id", "u")
    assert answer.returncode == 0 and "Oslo" in answer.stdout
    assert count_events(data_dir) == 2


def test_rebuilding_the_statement_keys_of_a_store_consolidated_before_they_existed(tmp_path: Path) -> None:
    from alembic import command

    from stores.sql.engine import alembic_config

    data_dir = tmp_path / "data"
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"event_id": "m1", "user_id": "maya", "role": "user", "speaker": "Maya",
                               "content": "I work as a paramedic at City General.", "timestamp": "2024-02-01T09:00:00Z"}) + "\n")
    assert cli(data_dir, "ingest", str(old)).returncode == 0
    assert json.loads(cli(data_dir, "consolidate", "--user-id", "maya").stdout)["examined"] == 1
    # The store as the code before migration 0007 left it (units consolidated, no keys), then upgraded.
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", f"sqlite:///{data_dir / 'memory.db'}")
    command.downgrade(config, "0006")
    assert cli(data_dir, "migrate").returncode == 0

    stale = cli(data_dir, "doctor", "--json")
    assert stale.returncode == 0, stale.stderr
    check = next(c for c in json.loads(stale.stdout)["checks"] if c["name"] == "statements")
    assert check["status"] == "warn" and "--rebuild-statements --tenant local" in check["detail"]

    unknown = cli(data_dir, "consolidate", "--rebuild-statements", "--tenant", "acme")
    assert unknown.returncode == 1 and "unknown tenant 'acme'" in unknown.stderr and not unknown.stdout
    rebuilt = cli(data_dir, "consolidate", "--rebuild-statements", "--tenant", "local")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout) == {"units": 1, "keys": 2, "version": 1, "tenants_marked": ["local"]}
    assert "rebuilding statement keys" in rebuilt.stderr  # rich's progress, on stderr
    with sqlite3.connect(data_dir / "memory.db") as conn:
        assert sorted(k for (k,) in conn.execute("SELECT key FROM unit_statements")) == ["maya|employer", "maya|occupation"]
    fixed = json.loads(cli(data_dir, "doctor", "--json").stdout)
    assert next(c for c in fixed["checks"] if c["name"] == "statements")["status"] == "ok"

    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"event_id": "m2", "user_id": "maya", "role": "user", "speaker": "Maya",
                               "content": "Northwind took me on as a pharmacist, today was day one.",
                               "timestamp": "2024-03-02T09:00:00Z"}) + "\n")
    assert cli(data_dir, "ingest", str(new)).returncode == 0
    report = json.loads(cli(data_dir, "consolidate", "--user-id", "maya").stdout)
    assert report["examined"] == 1 and report["superseded"] == 1  # the old job is closed by the new one
    answer = cli(data_dir, "context", "What is Maya's job?", "--user-id", "maya", "--json")
    texts = [u["text"] for u in json.loads(answer.stdout)["units"]]
    assert any("pharmacist" in t for t in texts) and not any("paramedic" in t for t in texts)
