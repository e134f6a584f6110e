"""The app `main.py` builds: every command on it, the same through `python -m memory_service.cli`
and through the `memory-service` console script's entry point."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from memory_service.cli.main import app

COMMANDS = ["serve", "migrate", "worker", "ingest", "consolidate", "retry", "context", "doctor", "compress", "mi", "eval", "keys"]
ROOT = Path(__file__).resolve().parents[2]


def listed(help_text: str) -> list[str]:
    return [word for line in help_text.splitlines() if (word := line.strip("│ ").split(" ")[0]) in COMMANDS]


def test_every_command_is_on_the_app() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0 and listed(result.stdout) == COMMANDS
    for group, commands in (("keys", ["create", "list", "revoke"]), ("eval", ["locomo"])):
        sub = CliRunner().invoke(app, [group, "--help"], env={"COLUMNS": "160"})
        assert sub.exit_code == 0 and all(f" {c} " in sub.stdout for c in commands)


def test_python_dash_m_has_every_command() -> None:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "memory_service.cli", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert listed(result.stdout) == COMMANDS


def test_the_console_script_runs_this_app() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["memory-service"].partition(":")
    target = importlib.import_module(module)
    assert getattr(target, function).__module__ == "memory_service.cli.main" and target.app is app
