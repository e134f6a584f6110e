"""The `memory-service` command line: builds the typer app and adds each module's commands to it.

Every command module has `register(app)`, which adds its commands (or its sub-app) to the app
it is handed; the modules share only `cli/common.py`, never each other or this module.
"""

from __future__ import annotations

import typer

from memory_service.cli import compress, context, doctor, ingest, keys, mcp, serve
from memory_service.cli import eval as eval_commands


def build_app() -> typer.Typer:
    app = typer.Typer(help="Agent memory: ingest interaction logs, get query-aware context.", no_args_is_help=True)
    serve.register(app)  # serve, migrate, worker
    ingest.register(app)  # ingest, consolidate, retry
    context.register(app)
    doctor.register(app)
    compress.register(app)  # compress, mi
    eval_commands.register(app)  # eval locomo
    keys.register(app)  # keys create|list|revoke
    mcp.register(app)  # mcp (stdio)
    return app


app = build_app()


def main() -> None:
    app()

