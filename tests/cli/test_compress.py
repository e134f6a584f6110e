"""`memory-service compress`, `mi` and `ingest --compressor` through the CLI (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compressors.extractive import ExtractiveCompressor
from memory_service.cli.main import app

EVENTS = [
    {"event_id": "d1", "agent_id": "deployer", "role": "user", "speaker": "Priya",
     "content": "Please move the staging database to port 5433.", "timestamp": "2024-03-14T09:00:00Z"},
    {"event_id": "d2", "agent_id": "deployer", "role": "tool",
     "tool": {"name": "edit_config", "arguments": {"key": "db.port", "value": 5433}, "result": {"status": "ok"}},
     "timestamp": "2024-03-14T09:00:05Z"},
    {"event_id": "d3", "agent_id": "deployer", "role": "assistant", "speaker": "Deployer",
     "content": "Done: staging now listens on port 5433.", "timestamp": "2024-03-14T09:00:09Z"},
    {"event_id": "d4", "agent_id": "deployer", "role": "user", "speaker": "Priya",
     "content": "I prefer deploys before 10:00 UTC from now on.", "timestamp": "2024-03-14T09:02:00Z"},
]


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEMORY_SERVICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEMORY_SERVICE_WINDOW_SIZE", "2")
    monkeypatch.setenv("MEMORY_SERVICE_WINDOW_OVERLAP", "1")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_compress_prints_units_and_stores_nothing(log_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compress", str(log_file), "--json"])
    assert result.exit_code == 0, result.output
    units = json_lines(result.stdout)
    assert units and all(u["compressor"] == "extractive" and u["compressor_version"] == ExtractiveCompressor.version for u in units)
    assert {i for u in units for i in u["source_event_ids"]} == {"d1", "d2", "d3", "d4"}
    assert not (tmp_path / "data").exists()


def test_compress_rejects_an_unknown_compressor(log_file: Path) -> None:
    result = CliRunner().invoke(app, ["compress", str(log_file), "--compressor", "nope"])
    assert result.exit_code == 1 and "unknown compressor 'nope'" in result.output


@pytest.mark.slow
def test_compress_with_llama_cpp_names_each_unit_writer(log_file: Path) -> None:
    result = CliRunner().invoke(app, ["compress", str(log_file), "--compressor", "llama_cpp", "--json"])
    assert result.exit_code == 0, result.output
    units = json_lines(result.stdout)
    assert {u["compressor"] for u in units} <= {"llama_cpp", "extractive"}
    assert {i for u in units for i in u["source_event_ids"]} == {"d1", "d2", "d3", "d4"}


@pytest.mark.slow
def test_mi_compares_compressors_on_the_same_windows(log_file: Path) -> None:
    result = CliRunner().invoke(
        app, ["mi", str(log_file), "-c", "extractive", "-c", "llama_cpp", "--sample", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["proxy"] == "SmolLM2-135M-Instruct.Q4_1"
    rows = {r["compressor"]: r for r in report["results"]}
    assert set(rows) == {"extractive", "llama_cpp"}
    for row in rows.values():
        assert row["n"] == 2 and 0.0 <= row["mi_bits"] <= row["upper_bound_bits"] == 1.0
        assert row["output_tokens"] > 0 and row["compression_ratio"] > 0


@pytest.mark.slow
def test_ingest_with_an_lm_compressor_reports_what_it_did(log_file: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", str(log_file), "--compressor", "llama_cpp"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["events"] == 4 and summary["windows"] == 2 and summary["lm_calls"] >= 1
    assert {"cache_hits", "fallback_windows", "rejected_units", "lm_completion_tokens"} <= set(summary)


def test_compress_prints_a_table_and_a_summary(log_file: Path) -> None:
    result = CliRunner().invoke(app, ["compress", str(log_file), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "extractive: events.jsonl" in result.stdout and "port 5433" in result.stdout
    summary = json.loads(result.stderr[result.stderr.index("{"):])
    assert summary["compressor"] == "extractive"


def test_compress_and_mi_reject_bad_files(log_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for command in ("compress", "mi"):
        missing = CliRunner().invoke(app, [command, str(tmp_path / "nope.jsonl")])
        assert missing.exit_code == 1 and "no such file" in " ".join(missing.stderr.split())
        nothing = CliRunner().invoke(app, [command, str(empty)])
        assert nothing.exit_code == 1 and "no events" in " ".join(nothing.stderr.split())
    assert CliRunner().invoke(app, ["compress", str(log_file), "--limit", "0"]).exit_code == 2


def test_mi_rejects_bad_input(log_file: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(EVENTS[0]) + "\n")
    result = CliRunner().invoke(app, ["mi", str(one), "-c", "extractive"])
    assert result.exit_code == 1 and "fewer than 2 windows" in " ".join(result.stderr.split())

    result = CliRunner().invoke(app, ["mi", str(log_file), "-c", "extractive", "--proxy-backend", "nope"])
    assert result.exit_code == 1 and "proxy model:" in " ".join(result.stderr.split())

    result = CliRunner().invoke(app, ["mi", str(log_file), "--sample", "1"])
    assert result.exit_code == 2 and "Invalid value for '--sample'" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_mi_measures_one_compressor_with_the_packaged_proxy(log_file: Path) -> None:
    result = CliRunner().invoke(app, ["mi", str(log_file), "-c", "extractive", "--sample", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["proxy"] == "SmolLM2-135M-Instruct.Q4_1"
    [row] = report["results"]
    assert row["compressor"] == "extractive" and row["n"] == 2 and 0.0 <= row["mi_bits"] <= row["upper_bound_bits"]
    assert 0.0 <= row["ci_low_bits"] <= row["mi_bits"] <= row["ci_high_bits"] <= row["upper_bound_bits"] + 1e-9

    table = CliRunner().invoke(app, ["mi", str(log_file), "--sample", "2"])  # the configured compressor, as a table
    assert table.exit_code == 0, table.output
    assert "I(X;Z) on events.jsonl, proxy SmolLM2-135M-Instruct.Q4_1" in " ".join(table.stdout.split())
