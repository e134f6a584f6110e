"""`memory-service serve` in process: the binding check on a real SQLite database, and the app it
hands to uvicorn, started and asked for /healthz. (tests/e2e runs `serve` as a real server process.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.cli.conftest import invoke, said


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> dict[str, Any]:
    """Instead of serving forever, run the app's lifespan once around a GET /healthz."""
    seen: dict[str, Any] = {}

    def run(app: FastAPI, **options: Any) -> None:
        async def once() -> None:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
                    seen["health"] = (await client.get("/healthz")).json()

        seen["options"] = options
        asyncio.run(once())

    monkeypatch.setattr(uvicorn, "run", run)
    return seen


def test_serve_runs_the_app_on_the_given_address(data_dir: Path, uvicorn_runs: dict[str, Any]) -> None:
    result = invoke("serve", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert uvicorn_runs["options"] == {"host": "127.0.0.1", "port": 8123, "log_config": None, "access_log": False}
    assert uvicorn_runs["health"]["status"] == "ok"
    assert (data_dir / "memory.db").exists()


def test_serve_binds_a_public_address_once_a_key_exists(data_dir: Path, uvicorn_runs: dict[str, Any]) -> None:
    refused = invoke("serve", "--host", "0.0.0.0")
    assert refused.exit_code == 2
    assert said(refused.stderr, "refusing to listen on 0.0.0.0 without API keys")
    assert said(refused.stderr, "memory-service keys create --tenant")
    assert "options" not in uvicorn_runs

    assert invoke("keys", "create", "--tenant", "acme").exit_code == 0
    result = invoke("serve", "--host", "0.0.0.0", MEMORY_SERVICE_PORT="8124")
    assert result.exit_code == 0, result.output
    assert uvicorn_runs["options"]["host"] == "0.0.0.0" and uvicorn_runs["options"]["port"] == 8124


def test_serve_rejects_a_bad_port(data_dir: Path) -> None:
    result = invoke("serve", "--port", "eighty")
    assert result.exit_code == 2 and said(result.stderr, "Invalid value for '--port'")
