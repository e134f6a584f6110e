"""Logging setup: plain text or one JSON object per line, with the request id and tenant.

The API's request middleware (`api/request_context.py`) puts the request id and the
request's state in context variables; every record logged while the request is handled
(by any module, in the same task or a task it spawned) carries them.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from memory_service.domain import DEFAULT_TENANT

LogFormat = Literal["text", "json"]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The request's `state` dict (scope["state"]): auth writes `tenant` there after the middleware ran.
request_state_var: ContextVar[dict[str, Any] | None] = ContextVar("request_state", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def current_tenant() -> str | None:
    state = request_state_var.get()
    if state is None:
        return None
    return str(state.get("tenant") or DEFAULT_TENANT)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
            entry["tenant"] = current_tenant()
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_var.get()
        return f"{line} [request_id={request_id} tenant={current_tenant()}]" if request_id else line


def configure_logging(fmt: LogFormat = "text", level: str = "INFO") -> None:
    """Route every logger (uvicorn's too) to one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The API logs one line per request itself (with route, status, duration, request id).
    logging.getLogger("uvicorn.access").disabled = True
