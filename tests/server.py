"""Start a real `memory-service` process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(
    data_dir: Path, env: dict[str, str] | None = None, timeout_s: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`memory-service serve` on a free port, yielded once /healthz answers; stopped with SIGTERM."""
    port = free_port()
    environment = {**os.environ, "MEMORY_SERVICE_DATA_DIR": str(data_dir), **(env or {})}
    log_path = data_dir.parent / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "memory_service.cli", "serve", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server did not become healthy: {log_path.read_text()}")
                time.sleep(0.3)
            yield url, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
