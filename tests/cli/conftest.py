"""In-process CLI tests (typer's CliRunner): a data directory in the environment, event files, and
helpers to run a command and read what it said.

Commands run their own event loop (`asyncio.run`), so these tests are plain functions, not
coroutines. `serve` and `worker` also have subprocess tests (tests/e2e) that run them for real.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from memory_service.cli.main import app

EVENTS = [
    {"event_id": "f1", "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann",
     "content": "My flight to Oslo leaves on 3 June 2024 at 07:40.", "timestamp": "2024-05-01T09:00:00Z"},
    {"event_id": "f2", "user_id": "ann", "session_id": "s1", "role": "assistant", "speaker": "Agent",
     "content": "Noted: Oslo flight on 3 June 2024. Shall I book a hotel?", "timestamp": "2024-05-01T09:00:10Z"},
    {"event_id": "f3", "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann",
     "content": "Yes, book the Radisson near the station for two nights.", "timestamp": "2024-05-01T09:01:00Z"},
    {"event_id": "f4", "user_id": "ann", "session_id": "s2", "role": "user", "speaker": "Ann",
     "content": "I adopted a grey cat called Miso last week.", "timestamp": "2024-05-08T18:00:00Z"},
]

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
        },
        "qa": [{"question": "When did Gina lose her job?", "answer": "January 2023", "evidence": ["D1:2"], "category": 2}],
    }
]


def invoke(*args: str, **env: str) -> Result:
    """Run `memory-service ARGS` in this process (stderr kept apart from stdout)."""
    return CliRunner().invoke(app, list(args), env=env or None)


def said(text: str, fragment: str) -> bool:
    """`fragment` is in `text`, whatever line breaks and wrapping rich put in either."""
    return "".join(fragment.split()) in "".join(text.split())


def json_out(result: Result) -> Any:
    """The JSON document a command printed on stdout."""
    return json.loads(result.stdout[result.stdout.index("{") :] if "{" in result.stdout else result.stdout)


def count_rows(data_dir: Path, table: str) -> int:
    db = data_dir / "memory.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty embedded-mode data directory (SQLite, local FAISS) the commands use."""
    path = tmp_path / "data"
    monkeypatch.setenv("MEMORY_SERVICE_DATA_DIR", str(path))
    for name in ("MEMORY_SERVICE_DATABASE_URL", "MEMORY_SERVICE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    return path


@pytest.fixture
def locomo_file(tmp_path: Path) -> Path:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(LOCOMO_LIKE))
    return path


@pytest.fixture
def ingested(data_dir: Path, events_file: Path) -> Path:
    """`data_dir` after `memory-service ingest` of EVENTS."""
    result = invoke("ingest", str(events_file))
    assert result.exit_code == 0, result.output
    return data_dir


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`serve` and `worker` route every logger to a handler on (the runner's) stderr: undo it afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    others = {name: logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    saved_others = {name: (lg.handlers[:], lg.propagate, lg.disabled) for name, lg in others.items()}
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, (handlers, propagate, disabled) in saved_others.items():
        others[name].handlers[:] = handlers
        others[name].propagate = propagate
        others[name].disabled = disabled
