"""A minimal OpenAI-compatible chat-completions server over a real llama.cpp model, for tests.

Three personalities, by path prefix, to exercise the client's fallbacks:
`/full/v1` honours `response_format` (json_schema and json_object, through llama.cpp's
grammar mode), `/no-schema/v1` answers 400 to json_schema and to a json_object with a
`schema` (like strict servers that only know plain json_object), and `/ignore/v1`
ignores `response_format` altogether.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import Body, FastAPI, HTTPException

from tests.server import free_port


def create_app(llm: Any, lock: threading.Lock) -> FastAPI:
    app = FastAPI()

    @app.post("/{mode}/v1/chat/completions")
    def chat(mode: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:  # sync: runs in a thread
        requested = body.get("response_format") or {}
        fmt: dict[str, Any] | None = None
        if mode == "full":
            if requested.get("type") == "json_schema":
                fmt = {"type": "json_object", "schema": requested["json_schema"]["schema"]}
            elif requested.get("type") == "json_object":
                fmt = {"type": "json_object"}
        elif mode == "no-schema":
            if requested.get("type") == "json_schema":
                raise HTTPException(400, "response_format json_schema is not supported")
            if requested.get("type") == "json_object":
                if "schema" in requested:
                    raise HTTPException(400, "response_format: unknown field 'schema'")
                fmt = {"type": "json_object"}
        elif mode != "ignore":
            raise HTTPException(404, "unknown mode")
        with lock:  # one generation at a time on the shared model
            return llm.create_chat_completion(
                messages=body["messages"],
                response_format=fmt,
                temperature=body.get("temperature", 0.0),
                max_tokens=body.get("max_tokens"),
                repeat_penalty=1.1,
            )

    return app


@contextmanager
def openai_server(llm: Any) -> Iterator[str]:
    """Serve `llm` on a free port; yields the base URL without the mode prefix."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(llm, threading.Lock()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("the OpenAI shim did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
