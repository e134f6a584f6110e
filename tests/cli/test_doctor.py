"""`memory-service doctor` in process (the subprocess tests with PostgreSQL and a crashing LM are in
tests/e2e/test_observability.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import invoke, said


def test_doctor_on_the_embedded_default(data_dir: Path) -> None:
    assert invoke("migrate").exit_code == 0
    as_json = invoke("doctor", "--json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert {"database", "redis", "faiss", "embedding", "compressor", "tokenizer"} <= set(by_name)
    assert by_name["database"]["status"] == "ok" and "migrations at head" in by_name["database"]["detail"]
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
