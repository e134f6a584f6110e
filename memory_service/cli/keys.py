"""`memory-service keys create|list|revoke`: per-tenant API keys (the `keys` sub-app).

Works on the database directly (the service need not run). The full key is printed once,
by `create`, on stdout alone so it can be captured; nothing can show it again.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from memory_service.auth import InvalidTenant, check_tenant, create_key
from memory_service.cli.common import err, fail, out, run
from memory_service.settings import Settings
from stores.sql.api_keys import ApiKeyTable
from stores.sql.store import SqlStore


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="Per-tenant API keys: create, list, revoke.", no_args_is_help=True)
    keys_app.command("create")(keys_create)
    keys_app.command("list")(keys_list)
    keys_app.command("revoke")(keys_revoke)
    app.add_typer(keys_app, name="keys")


async def _with_store(action: Any) -> Any:
    store = await SqlStore.open(Settings().sql_url)
    try:
        return await action(store)
    finally:
        await store.close()


def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant this key acts as.")],
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the key by.")] = None,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=0, help="Requests per minute for this key (0 = unlimited; default the service's).")
    ] = None,
) -> None:
    """Create a key; prints it once (only its hash is stored)."""
    try:
        check_tenant(tenant)
    except InvalidTenant as exc:
        fail(str(exc), 2)
    created = run(lambda: _with_store(lambda store: create_key(store, tenant, name, rate_limit)))
    err.print(
        f"created key {created.record.key_id} for tenant {tenant!r}; store it now, it cannot be shown again:",
        highlight=False,
    )
    print(created.key)


def keys_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List keys (ids, tenants, names, limits, dates; never secrets)."""
    records = run(lambda: _with_store(lambda store: ApiKeyTable(store).list_keys(tenant, include_revoked=all_keys)))
    rows = [
        {
            "key_id": r.key_id,
            "tenant": r.tenant,
            "name": r.name,
            "rate_limit_per_minute": r.rate_limit_per_minute,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in records
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("key id", "tenant", "name", "rate limit/min", "created", "revoked")
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    out.print(table)


def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (as `keys list` shows it) or the whole key.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The key's tenant (a guard against revoking another tenant's key).")],
) -> None:
    """Revoke a key: requests with it fail from now on (within the service's key cache, 2 s by default)."""
    if key_id.startswith("ms_"):
        key_id = key_id.split("_")[1] if key_id.count("_") >= 2 else key_id
    revoked = run(lambda: _with_store(lambda store: ApiKeyTable(store).revoke(key_id, tenant)))
    if not revoked:
        fail(f"no active key {key_id} for tenant {tenant!r}", 1)
    err.print(f"revoked key {key_id} of tenant {tenant!r}", highlight=False)
