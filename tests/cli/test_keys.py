"""`memory-service keys create|list|revoke` against a real SQLite database; the key then works over REST."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from api.app import create_app
from memory_service.cli.main import app
from memory_service.service import MemoryService
from memory_service.settings import Settings
from stores.sql.api_keys import ApiKeyTable


async def test_create_list_revoke(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"MEMORY_SERVICE_DATA_DIR": str(tmp_path / "data")}

    async def cli(*args: str):  # type: ignore[no-untyped-def]  # the CLI runs its own event loop: off this one
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    created = (await cli("keys", "create", "--tenant", "acme", "--name", "ci", "--rate-limit", "100"))
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ms_") and len(key) == len("ms_") + 12 + 1 + 43
    key_id, secret = key.split("_", 2)[1:]

    listed = (await cli("keys", "list", "--json"))
    assert listed.exit_code == 0
    [row] = json.loads(listed.stdout)
    assert row["key_id"] == key_id and row["tenant"] == "acme" and row["name"] == "ci" and row["rate_limit_per_minute"] == 100
    table = (await cli("keys", "list"))
    assert key_id in table.stdout and secret not in table.stdout and secret not in listed.stdout

    settings = Settings(data_dir=tmp_path / "data", api_key_cache_seconds=0)
    service = await MemoryService.open(settings, embedder=embedder, run_jobs=False)
    try:
        [record] = await ApiKeyTable(service.store).list_keys()
        assert record.secret_hash == hashlib.sha256(secret.encode()).hexdigest()  # only the hash is stored
        transport = httpx.ASGITransport(app=create_app(settings, service=service))
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"x-api-key": key}) as client:
            assert (await client.get("/v1/events", params={"user_id": "u"})).status_code == 200
            wrong_tenant = (await cli("keys", "revoke", key_id, "--tenant", "other"))
            assert wrong_tenant.exit_code == 1 and "no active key" in wrong_tenant.stderr
            revoked = (await cli("keys", "revoke", key, "--tenant", "acme"))  # the whole key works too
            assert revoked.exit_code == 0, revoked.output
            assert (await client.get("/v1/events", params={"user_id": "u"})).status_code == 401
    finally:
        await service.close()

    assert json.loads((await cli("keys", "list", "--json")).stdout) == []
    assert [r["revoked_at"] is not None for r in json.loads((await cli("keys", "list", "--all", "--json")).stdout)] == [True]
    bad = (await cli("keys", "create", "--tenant", "no spaces"))
    assert bad.exit_code == 2 and "invalid tenant" in bad.stderr


def test_keys_on_an_empty_database_and_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"MEMORY_SERVICE_DATA_DIR": str(tmp_path / "data")}
    listed = runner.invoke(app, ["keys", "list", "--json", "--tenant", "acme"], env=env)
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    missing = runner.invoke(app, ["keys", "revoke", "some-id"], env=env)
    assert missing.exit_code == 2 and "Missing option '--tenant'" in " ".join(missing.stderr.split())
    negative = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--rate-limit", "-1"], env=env)
    assert negative.exit_code == 2 and "Invalid value for '--rate-limit'" in " ".join(negative.stderr.split())
    unknown = runner.invoke(app, ["keys", "rotate"], env=env)
    assert unknown.exit_code == 2 and "No such command 'rotate'" in " ".join(unknown.stderr.split())
