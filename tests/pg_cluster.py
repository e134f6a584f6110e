"""A private PostgreSQL cluster for fault tests: stopping it harms no one else.

The shared server on 5432 must never be restarted (other tests use it), so a test that
needs PostgreSQL to go away gets its own cluster: `initdb` into a temporary directory
and `pg_ctl` on a free port, run as the `postgres` OS user (postgres refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.server import free_port

PG_BIN = Path(os.environ.get("MEMORY_SERVICE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class ClusterUnavailable(RuntimeError):
    """Why a private cluster cannot be started here (the test is skipped with this reason)."""


@dataclass
class PrivateCluster:
    base: Path
    port: int

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        result = subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]), capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = (self.base / "postgres.log").read_text() if (self.base / "postgres.log").exists() else ""
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {result.stdout}{result.stderr}\n{log[-2000:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._pg_ctl("-o", options, "-l", str(self.base / "postgres.log"), "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients are concerned: connections are cut, recovery runs on start."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def running(self) -> bool:
        return subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]), capture_output=True).returncode == 0


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _check_available() -> None:
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        raise ClusterUnavailable(f"no initdb/pg_ctl in {PG_BIN}")
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root without runuser: cannot start postgres as another user")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterUnavailable("running as root and there is no `postgres` OS user") from None


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started cluster on a free port; stopped and deleted on the way out."""
    _check_available()
    base = Path(tempfile.mkdtemp(prefix="ms-pg-"))
    cluster = PrivateCluster(base, free_port())
    try:
        base.chmod(0o755)
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(base, postgres.pw_uid, postgres.pw_gid)
        init = subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync"]),
            capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0:
            raise ClusterUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        cluster.start()
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running():
            try:
                cluster.stop("fast")
            except RuntimeError:
                pass
        shutil.rmtree(base, ignore_errors=True)
