"""`openai`: any OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp server, ...).

Asks for `response_format: json_schema` (OpenAI, vLLM, Ollama); a server that rejects
it is asked with `json_object` carrying the schema (llama-cpp-python's server, which
turns it into a grammar), then plain `json_object`, then no response format (the mode
that worked is remembered for later windows). A server that accepts a format but
ignores it is handled like any unconstrained model: the answer is validated and, if
it does not fit, asked for once more.

`concurrency` windows are in flight at once (`LMCompressor.compress_windows`): servers
such as vLLM, llama.cpp's `llama-server --parallel N` or Ollama with
`OLLAMA_NUM_PARALLEL` batch concurrent requests into one decode. A server that runs
one request at a time queues the rest, and a queued window's wait counts against its
`timeout_s`.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from compressors.lm.client import Generation, GenerationTimeout, Messages
from compressors.lm.compressor import LMCompressor

MODES = ("json_schema", "json_object_schema", "json_object", "none")


class ServerError(RuntimeError):
    pass


def response_format(mode: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "memory_units", "schema": schema}}
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def refuses_format(response: httpx.Response) -> bool:
    """The server does not take the `response_format` it was sent (so try the next mode).

    Most servers answer 400/422; llama-cpp-python's server answers its request-validation
    errors with a 500 naming the field.
    """
    if response.status_code in (400, 404, 415, 422, 501):
        return True
    return response.status_code == 500 and "response_format" in response.text


class OpenAICompressor(LMCompressor):
    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
        max_tokens: int | None = None,
        concurrency: int | None = None,
        **_: Any,
    ) -> None:
        if not base_url:
            raise ValueError("the openai compressor needs MEMORY_SERVICE_LLM_BASE_URL, e.g. http://127.0.0.1:11434/v1")
        super().__init__(model or "default", timeout_s, max_tokens, concurrency or 1)
        self.url = base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One connection per request in flight (httpx's pool is thread-safe).
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self.client = httpx.Client(headers=headers, limits=limits)
        self.mode = MODES[0]

    def close(self) -> None:
        self.client.close()

    def _post(self, body: dict[str, Any], deadline: float) -> httpx.Response:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise GenerationTimeout(f"no time left of {self.timeout_s:.0f} s")
        try:
            return self.client.post(self.url, json=body, timeout=remaining)
        except httpx.TimeoutException as exc:
            raise GenerationTimeout(f"the server did not answer within {self.timeout_s:.0f} s") from exc

    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        for mode in MODES[MODES.index(self.mode) :]:
            fmt = response_format(mode, schema)
            if fmt is None:
                body.pop("response_format", None)
            else:
                body["response_format"] = fmt
            response = self._post(body, deadline)
            if mode != MODES[-1] and refuses_format(response):
                continue  # this server does not take that response format: try the next one
            if response.status_code != 200:
                raise ServerError(f"HTTP {response.status_code} from {self.url}: {response.text[:200]}")
            self.mode = mode
            data = response.json()
            usage = data.get("usage") or {}
            content = data["choices"][0]["message"].get("content") or ""
            # llama.cpp's llama-server also says how long prompt processing and generation took
            timings = data.get("timings") or {}
            return Generation(
                content, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                prompt_eval_tokens=int(timings.get("prompt_n") or 0),
                prompt_eval_seconds=float(timings.get("prompt_ms") or 0) / 1000,
                generation_seconds=float(timings.get("predicted_ms") or 0) / 1000,
            )
        raise AssertionError("unreachable")


def create_openai(**options: Any) -> OpenAICompressor:
    return OpenAICompressor(**options)
