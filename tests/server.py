"""Real `memory-service` processes (API server, worker) and a private Redis, for e2e tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 120, path: str = "/healthz"
) -> None:
    """Return once `url` + `path` answers 200; fail at once if the process exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"server did not become healthy: {log_path.read_text()[-3000:]}")
        time.sleep(0.3)


async def create_database(admin_dsn: str, prefix: str = "ms_test") -> tuple[str, str]:
    """A new, empty PostgreSQL database: (name, SQLAlchemy asyncpg URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def start_server(data_dir: Path, env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[bytes], Path]:
    """Start `memory-service serve` on a free port without waiting: (url, process, log path).
    Start several, then `wait_healthy` each, so they load their models side by side."""
    port = free_port()
    environment = {**os.environ, "MEMORY_SERVICE_DATA_DIR": str(data_dir), **(env or {})}
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "memory_service.cli", "serve", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return f"http://127.0.0.1:{port}", process, log_path


@contextmanager
def running_server(
    data_dir: Path, env: dict[str, str] | None = None, timeout_s: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`memory-service serve` on a free port, yielded once /healthz answers; stopped with SIGTERM."""
    url, process, log_path = start_server(data_dir, env)
    try:
        wait_healthy(url, process, log_path, timeout_s)
        yield url, process
    finally:
        stop(process)


@contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError("redis-server did not start")
        time.sleep(0.1)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "memory_service.cli", "worker"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def stopping(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Stop every process in the list on the way out, whatever happened (no orphan workers)."""
    try:
        yield
    finally:
        for process in processes:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
