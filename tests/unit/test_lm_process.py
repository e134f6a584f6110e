"""LMProcess: calls forwarded to a real child process, and what happens when the child really dies."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from compressors.lm.process import LMProcess, LMProcessDied, LMProcessTimeout, LMUnavailable, describe_exit, resolve

BACKOFF_S = 0.3


@pytest.fixture
def echo() -> Iterator[LMProcess]:
    process = LMProcess("tests.crashing_lm:Echo", {"greeting": "hi"}, label="echo", backoff_s=BACKOFF_S)
    yield process
    process.close()


def test_calls_run_in_a_child_built_from_the_factory(echo: LMProcess) -> None:
    assert echo.call("greet", ("Ann",)) == "hi Ann"
    pid = echo.call("pid")
    assert pid != os.getpid() and pid == echo.pid
    assert echo.call("pid") == pid  # one child serves every call
    assert echo.status().state == "running" and echo.starts == 1


def test_an_exception_in_the_hosted_object_keeps_its_type_and_the_child(echo: LMProcess) -> None:
    pid = echo.call("pid")
    with pytest.raises(KeyError, match="no such thing"):
        echo.call("fail")
    assert echo.call("pid") == pid and echo.failures == 0


@pytest.mark.parametrize(("method", "how"), [("segfault", "SIGSEGV"), ("abort", "SIGABRT"), ("exit", "exited with code 3")])
def test_a_native_crash_raises_says_how_and_the_next_call_gets_a_fresh_child(echo: LMProcess, method: str, how: str) -> None:
    first = echo.call("pid")
    with pytest.raises(LMProcessDied, match=how):
        echo.call(method)
    assert echo.failures == 1 and how in (echo.last_failure or "")
    with pytest.raises(LMUnavailable, match="restarts in"):  # backing off: fail fast, no waiting
        echo.call("pid")
    assert echo.status().state == "backoff"
    time.sleep(BACKOFF_S + 0.1)
    second = echo.call("pid")
    assert second != first and echo.starts == 2
    assert echo.call("greet", ("Bo",)) == "hi Bo"


def test_a_hang_past_the_timeout_kills_the_child(echo: LMProcess) -> None:
    first = echo.call("pid")
    started = time.monotonic()
    with pytest.raises(LMProcessTimeout, match="within 1 s"):
        echo.call("hang", timeout_s=1)
    assert time.monotonic() - started < 5
    with pytest.raises(OSError):
        os.kill(first, 0)  # gone, not left running
    time.sleep(BACKOFF_S + 0.1)
    assert echo.call("pid") != first


def test_consecutive_failures_double_the_backoff(echo: LMProcess) -> None:
    for _ in range(2):
        with pytest.raises(LMProcessDied):
            echo.call("segfault")
        time.sleep(echo.status().retry_in_s + 0.05)
    with pytest.raises(LMProcessDied):
        echo.call("segfault")
    assert echo.status().retry_in_s > 2.5 * BACKOFF_S  # 4x after the third in a row
    time.sleep(echo.status().retry_in_s + 0.05)
    echo.call("pid")
    with pytest.raises(LMProcessDied):
        echo.call("segfault")
    assert echo.status().retry_in_s <= BACKOFF_S  # a good answer reset the count


def test_a_factory_that_fails_raises_its_own_error() -> None:
    process = LMProcess("tests.crashing_lm:broken_factory", label="broken", backoff_s=BACKOFF_S)
    try:
        with pytest.raises(FileNotFoundError, match="model.gguf"):
            process.start()
        assert process.failures == 1 and "did not load" in (process.last_failure or "")
    finally:
        process.close()


def test_an_answer_that_cannot_be_sent_is_an_error_not_a_hang(echo: LMProcess) -> None:
    with pytest.raises(RuntimeError, match="could not send its answer"):
        echo.call("unpicklable")
    assert echo.call("greet", ("Cy",)) == "hi Cy"


def test_close_stops_the_child(echo: LMProcess) -> None:
    pid = echo.call("pid")
    echo.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the child outlived close()")
    assert echo.status().state == "stopped"


def test_resolve_and_exit_descriptions() -> None:
    assert resolve("os.path:join") is os.path.join
    with pytest.raises(ValueError, match="module:callable"):
        resolve("os.path.join")
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(2) == "exited with code 2"
