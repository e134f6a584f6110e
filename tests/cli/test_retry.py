"""`memory-service retry` on a database filled by `memory-service ingest`.

With the extractive compressor nothing was ever marked as an LM failure, so a run re-queues
nothing; the LM path is covered in tests/integration/test_lm_pipeline.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import count_rows, invoke, json_out, said


def test_retry_with_nothing_marked_changes_nothing(ingested: Path) -> None:
    units = count_rows(ingested, "memory_units")
    result = invoke("retry", "--compressor", "extractive", "--limit", "5")
    assert result.exit_code == 0, result.output
    report = json_out(result)
    assert report["requeued_events"] == 0 and report["stand_in_units_deleted"] == 0
    assert report["units_created"] == 0 and report["still_marked"] == 0
    assert {"windows", "fallback_windows", "lm_calls"} <= set(report)
    assert count_rows(ingested, "memory_units") == units


def test_retry_rejects_bad_options(data_dir: Path) -> None:
    result = invoke("retry", "--limit", "0")
    assert result.exit_code == 2 and said(result.stderr, "Invalid value for '--limit'")
