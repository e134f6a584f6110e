"""The suite's own guard: a test that crashes natively fails alone, and the run still ends with its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NATIVE_TESTS = '''
import faulthandler


def test_before():
    assert True


def test_segfaults():
    faulthandler._sigsegv()


def test_after():
    assert True
'''


def test_a_segfaulting_test_fails_with_the_signal_and_the_others_still_run(tmp_path: Path) -> None:
    (tmp_path / "test_native.py").write_text(NATIVE_TESTS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
         "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", str(tmp_path / "test_native.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 failed, 2 passed" in lines[-1]
    assert "crashed while running" in run.stdout and "test_segfaults" in run.stdout
    assert "killed by SIGSEGV" in run.stdout
