"""`memory-service doctor` in process (the subprocess tests with PostgreSQL and a crashing LM are in
tests/e2e/test_observability.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.conftest import invoke, said


def test_doctor_reports_statement_keys_of_an_older_derivation(ingested: Path) -> None:
    assert invoke("consolidate", "--user-id", "ann").exit_code == 0
    with sqlite3.connect(ingested / "memory.db") as conn:  # as migration 0011 leaves a store consolidated before it
        conn.execute("UPDATE statement_key_versions SET version = 0")
    result = invoke("doctor")
    assert result.exit_code == 0, result.output  # a warning, not a failed required check
    line = next(line for line in result.stdout.splitlines() if " statements " in line)
    assert line.startswith("warn") and said(line, "statement keys of 1 tenant(s) (local) were derived by version 0")
    assert said(line, "run `memory-service consolidate --rebuild-statements --tenant local`")

    assert invoke("consolidate", "--rebuild-statements", "--tenant", "local").exit_code == 0
    assert said(invoke("doctor").stdout, "ok statements statement keys at derivation version")


def test_doctor_on_the_embedded_default(data_dir: Path) -> None:
    assert invoke("migrate").exit_code == 0
    as_json = invoke("doctor", "--json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert {"database", "redis", "faiss", "embedding", "compressor", "tokenizer"} <= set(by_name)
    assert by_name["database"]["status"] == "ok" and "migrations at head" in by_name["database"]["detail"]
    assert by_name["statements"]["status"] == "ok" and "statement keys at derivation version" in by_name["statements"]["detail"]
    assert by_name["embedding"]["status"] == "ok" and "dim 384" in by_name["embedding"]["detail"]

    table = invoke("doctor")
    assert table.exit_code == 0 and said(table.stdout, "ok database") and "failed" not in table.stderr


def test_doctor_fails_on_a_required_check_and_on_bad_configuration(data_dir: Path) -> None:
    broken = invoke("doctor", MEMORY_SERVICE_REDIS_URL="redis://127.0.0.1:1/0")
    assert broken.exit_code == 1
    assert any("FAIL" in line and " redis " in line for line in broken.stdout.splitlines())
    assert said(broken.stderr, "doctor: a required check failed")

    invalid = invoke("doctor", MEMORY_SERVICE_WINDOW_SIZE="0")
    assert invalid.exit_code == 1 and said(invalid.stderr, "invalid configuration: ('window_size',)")
