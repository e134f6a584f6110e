"""Native LM code in a child process: a crash there costs one call, not the process that asked.

llama.cpp and torch run native kernels that can fault (a segfault in a CPU-specific
kernel, an OOM kill, a decode that never returns). `LMProcess` builds the model object
in a child from an importable factory ("module:callable" plus keyword options) and
forwards method calls to it over a socket pair, framed and pickled by
`multiprocessing.connection`. The child is a fresh interpreter
(`python -m compressors.lm.process FD`): not forked, so it inherits no threads or event
loops, and unlike multiprocessing's spawn it does not re-run the parent's `__main__`.

When the child dies, or a call outlives its timeout (the child is then killed), the
call raises `LMProcessDied` / `LMProcessTimeout`. The next call starts a fresh child,
but only after a backoff that doubles with each consecutive failure (capped); calls
before then fail at once with `LMUnavailable`, so callers fall back without waiting.
Exceptions raised *by* the hosted object are re-raised in the parent with their own
type when they pickle, so callers' ordinary error handling keeps working.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from compressors.factories import resolve

log = logging.getLogger(__name__)

DEFAULT_CALL_TIMEOUT_S = 300.0
DEFAULT_START_TIMEOUT_S = 300.0
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0


class LMProcessError(RuntimeError):
    """The LM child process could not answer (it died, hung, or is waiting to be restarted)."""


class LMProcessDied(LMProcessError):
    pass


class LMProcessTimeout(LMProcessError):
    pass


class LMUnavailable(LMProcessError):
    pass


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _serve(conn: Connection) -> None:
    """The child: build the object, then answer (method, args, kwargs) requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the child stops
    faulthandler.enable()  # a native fault prints the Python stack to the child's stderr (the logs)
    try:
        factory, options, path = conn.recv()
        sys.path[:] = path  # what the parent can import, the child can
        hosted = resolve(factory)(**options)
    except BaseException as exc:
        conn.send(("error", _portable(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        method, args, kwargs = request
        try:
            reply: tuple[str, Any] = ("ok", getattr(hosted, method)(*args, **kwargs))
        except BaseException as exc:
            reply = ("error", _portable(exc))
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result
            conn.send(("error", RuntimeError(f"the LM process could not send its answer: {exc}")))


@dataclass
class LMProcessStatus:
    label: str
    state: str  # running | stopped | backoff
    pid: int | None
    starts: int
    failures: int
    last_failure: str | None
    retry_in_s: float


class LMProcess:
    """One child process hosting the object `factory(**options)`; `call` forwards a method call.

    Calls are serialised (one model, one request at a time). The child starts on the
    first call (or `start()`), and again after a failure once the backoff has passed.
    """

    def __init__(
        self,
        factory: str,
        options: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.factory = factory
        self.options = dict(options or {})
        self.label = label or factory
        self.call_timeout_s = call_timeout_s
        self.start_timeout_s = start_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.starts = 0
        self.failures = 0
        self.last_failure: str | None = None
        self._consecutive = 0
        self._retry_at = 0.0
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def status(self) -> LMProcessStatus:
        alive = self._alive()
        retry_in = max(0.0, self._retry_at - time.monotonic())
        state = "running" if alive else ("backoff" if retry_in > 0 else "stopped")
        return LMProcessStatus(self.label, state, self.pid if alive else None, self.starts, self.failures,
                               self.last_failure, round(retry_in, 1))

    def start(self) -> None:
        with self._lock:
            self._ensure_running()

    def call(self, method: str, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None,
             *, timeout_s: float | None = None) -> Any:
        """`hosted.method(*args, **kwargs)` in the child; raises LMProcessError when the child cannot answer."""
        with self._lock:
            self._ensure_running()
            try:
                self._conn.send((method, tuple(args), dict(kwargs or {})))
            except (OSError, ValueError) as exc:
                raise self._failed(LMProcessDied, f"{self.label}: the LM process is gone ({exc})") from None
            status, value = self._receive(timeout_s or self.call_timeout_s, method)
            if status == "ok":
                self._consecutive = 0
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is None:
            return
        try:
            conn.send(None)
            process.wait(2.0)
        except Exception:
            process.kill()
            process.wait(5.0)
        conn.close()

    # -- internals (called with the lock held) ----------------------------------------

    def _ensure_running(self) -> None:
        if self._process is not None:
            if self._alive():
                return
            self._failed(LMProcessDied, f"{self.label}: the LM process {describe_exit(self._process.returncode)} between calls")
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise LMUnavailable(f"{self.label}: LM process restarts in {wait:.1f} s (last failure: {self.last_failure})")
        parent_end, child_end = socket.socketpair()
        with child_end:
            # stdout joins stderr: the child's prints must not mix with a CLI's own output.
            process = subprocess.Popen(
                [sys.executable, "-m", "compressors.lm.process", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else None,
            )
        self._process, self._conn = process, Connection(parent_end.detach())
        self.starts += 1
        self._conn.send((self.factory, self.options, list(sys.path)))
        status, value = self._receive(self.start_timeout_s, "start")
        if status == "error":  # the factory raised (a missing model file, a bad option)
            self._failed(LMProcessDied, f"{self.label}: the LM did not load ({type(value).__name__}: {value})")
            raise value
        log.info("%s: LM process %s started (start %d)", self.label, value, self.starts)

    def _receive(self, timeout_s: float, during: str) -> tuple[str, Any]:
        try:
            ready = self._conn.poll(timeout_s)
        except (OSError, EOFError):
            ready = True
        if not ready:
            raise self._failed(LMProcessTimeout, f"{self.label}: no answer to {during} within {timeout_s:.0f} s; LM process killed")
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            try:
                self._process.wait(5.0)
            except subprocess.TimeoutExpired:
                pass
            raise self._failed(
                LMProcessDied, f"{self.label}: the LM process {describe_exit(self._process.returncode)} during {during}"
            ) from None

    def _failed(self, kind: type[LMProcessError], reason: str) -> LMProcessError:
        """Kill and forget the child, schedule the restart, and return the error to raise."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5.0)
        if conn is not None:
            conn.close()
        self.failures += 1
        self._consecutive += 1
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (self._consecutive - 1))
        self._retry_at = time.monotonic() + delay
        self.last_failure = reason
        log.warning("%s (restart allowed in %.1f s)", reason, delay)
        return kind(reason)


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
