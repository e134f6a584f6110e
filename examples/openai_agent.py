"""The memory agent of `memory_agent.py` on a real OpenAI-compatible chat model.

Not run in CI (it needs an endpoint). Any server that speaks the OpenAI chat API with
tool calling works: OpenAI, vLLM, Ollama, llama.cpp's server.

    pip install langchain-openai           # e.g. 1.7.3 with langchain-core 1.7.2
    export OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_API_KEY=unused OPENAI_MODEL=qwen2.5:7b
    memory-service serve &                 # or leave --url out for an in-process service
    python examples/openai_agent.py --url http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from examples.memory_agent import demo
from memory_service.integrations.langgraph import MemoryServiceStore


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="memory-service URL; default: an in-process service in a temp dir")
    parser.add_argument("--model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    args = parser.parse_args(argv)

    from langchain_openai import ChatOpenAI  # not a dependency of the project

    model = ChatOpenAI(model=args.model, base_url=os.environ.get("OPENAI_BASE_URL"), temperature=0)
    if args.url:
        store = MemoryServiceStore.connect(args.url)
        assert store.client is not None
        replies = demo(store.client, store, model)
    else:
        from api.inprocess import InProcessService
        from memory_service.settings import Settings

        with InProcessService(Settings(data_dir=Path(tempfile.mkdtemp()))) as local:
            client = local.client()
            replies = demo(client, MemoryServiceStore(client, local.async_client()), model)
    for reply in replies:
        print(reply)


if __name__ == "__main__":
    main()
