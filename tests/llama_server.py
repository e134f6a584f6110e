"""llama-cpp-python's OpenAI-compatible server (`llama_cpp.server`) as a subprocess, for tests and benchmarks.

`python -m tests.llama_server --port P --model GGUF` builds the server exactly as
`python -m llama_cpp.server` does (its `create_app`, run by uvicorn) and wraps it in
one counting ASGI layer: `GET /inflight` answers how many chat completions the server
had in flight at most (received, answer not yet sent in full) and in total. That is the evidence
that a client's requests really overlapped at the server, which timing on a shared
2-core machine cannot give robustly. `llama_cpp_server()` starts it on a free port.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.server import free_port, stop, wait_healthy

ASGIApp = Any


class InFlightCounter:
    """ASGI middleware: counts chat-completion requests between their arrival and the end of their answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.now = 0
        self.max = 0
        self.total = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/inflight":
            body = json.dumps({"now": self.now, "max": self.max, "total": self.total}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        self.now += 1
        self.total += 1
        self.max = max(self.max, self.now)
        answered = False

        async def counting_send(message: dict[str, Any]) -> None:
            # In flight until the last byte of the answer is handed over: the app may still
            # be cleaning up after that, when the client already sends its next request.
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body") and not answered:
                answered = True
                self.now -= 1
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if not answered:
                self.now -= 1


def main() -> None:
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True, help="a .gguf file")
    parser.add_argument("--alias", default="smollm2", help="the model name clients ask for")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()
    model = ModelSettings(
        model=args.model, model_alias=args.alias, n_ctx=args.n_ctx, n_threads=args.threads,
        n_threads_batch=args.threads, seed=0, verbose=False,
    )
    app = create_app(server_settings=ServerSettings(host="127.0.0.1", port=args.port), model_settings=[model])
    uvicorn.run(InFlightCounter(app), host="127.0.0.1", port=args.port, log_level="warning")


def packaged_smollm2() -> Path:
    """The packaged SmolLM2 GGUF, found without importing its package (see compressors.lm.models)."""
    from compressors.lm.models import packaged_gguf

    return packaged_gguf()


@contextmanager
def llama_cpp_server(model: Path | None = None, threads: int = 1, timeout_s: float = 120) -> Iterator[str]:
    """`llama_cpp.server` serving `model` (default the packaged SmolLM2) on a free port; yields
    the OpenAI base URL (`http://127.0.0.1:PORT/v1`) once `/v1/models` answers."""
    port = free_port()
    gguf = model or packaged_smollm2()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "llama_cpp_server.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.llama_server", "--port", str(port), "--model", str(gguf),
                 "--threads", str(threads)],
                env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log_path, timeout_s, path="/v1/models")
            yield f"{url}/v1"
        finally:
            stop(process)


def in_flight(base_url: str) -> dict[str, int]:
    """What the server behind `base_url` counted: {"now", "max", "total"} chat completions."""
    return httpx.get(base_url.removesuffix("/v1") + "/inflight", timeout=5).json()


if __name__ == "__main__":
    main()
