"""`memory-service ingest`: JSONL and LoCoMo files into a real SQLite database, and every way a file can be bad."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import EVENTS, count_rows, invoke, json_out, said


def test_ingest_stores_compresses_and_indexes_a_jsonl_file(data_dir: Path, events_file: Path) -> None:
    result = invoke("ingest", str(events_file))
    assert result.exit_code == 0, result.output
    summary = json_out(result)
    assert summary["events"] == 4 and summary["new_events"] == 4 and summary["units_created"] >= 2
    assert "windows" not in summary  # the extractive compressor: no LM summary
    assert count_rows(data_dir, "events") == 4 and count_rows(data_dir, "memory_units") == summary["units_created"]
    assert (data_dir / "faiss").is_dir()

    again = invoke("ingest", str(events_file), "--compressor", "extractive")
    assert again.exit_code == 0 and json_out(again)["new_events"] == 0
    assert count_rows(data_dir, "events") == 4


def test_ingest_reads_locomo_files(data_dir: Path, locomo_file: Path) -> None:
    result = invoke("ingest", str(locomo_file), "-f", "locomo")
    assert result.exit_code == 0, result.output
    assert json_out(result)["new_events"] == 3


def test_ingest_rejects_a_bad_file_before_storing_any_of_it(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(EVENTS[0]) + "\n" + json.dumps({**EVENTS[1], "role": "robot"}) + "\n")
    result = invoke("ingest", str(bad))
    assert result.exit_code == 1 and said(result.stderr, "error: ") and said(result.stderr, "bad.jsonl:2: role")
    assert count_rows(data_dir, "events") == 0

    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    assert said(invoke("ingest", str(broken)).stderr, "broken.jsonl:1")

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    result = invoke("ingest", str(empty))
    assert result.exit_code == 1 and said(result.stderr, "empty.jsonl: no events")

    result = invoke("ingest", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 1 and said(result.stderr, "no such file")

    result = invoke("ingest", str(bad), "--format", "locomo")
    assert result.exit_code == 1 and said(result.stderr, "not a LoCoMo file")

    result = invoke("ingest", str(bad), "--format", "yaml")
    assert result.exit_code == 2 and said(result.stderr, "Invalid value for '--format'")


def test_ingest_applies_the_service_size_limits(data_dir: Path, events_file: Path) -> None:
    result = invoke("ingest", str(events_file), MEMORY_SERVICE_MAX_EVENT_BYTES="16")
    assert result.exit_code == 1 and said(result.stderr, "events[0].content:") and said(result.stderr, "the limit is 16")
    assert count_rows(data_dir, "events") == 0


def test_ingest_rejects_an_unknown_compressor(data_dir: Path, events_file: Path) -> None:
    result = invoke("ingest", str(events_file), "--compressor", "nope")
    assert result.exit_code == 1 and said(result.stderr, "error: unknown compressor 'nope'")
    assert count_rows(data_dir, "events") == 0
