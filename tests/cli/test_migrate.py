"""`memory-service migrate` on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.cli.conftest import invoke, said


def test_migrate_creates_and_then_keeps_the_schema(data_dir: Path) -> None:
    result = invoke("migrate")
    assert result.exit_code == 0, result.output
    assert said(result.stdout, "memory.db is up to date")
    with sqlite3.connect(data_dir / "memory.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        [version] = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"events", "memory_units", "api_keys", "alembic_version"} <= tables

    again = invoke("migrate")
    assert again.exit_code == 0
    with sqlite3.connect(data_dir / "memory.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == version


def test_migrate_takes_no_arguments(data_dir: Path) -> None:
    result = invoke("migrate", "now")
    assert result.exit_code == 2 and said(result.stderr, "unexpected extra argument") and said(result.stderr, "(now)")
    assert not (data_dir / "memory.db").exists()
