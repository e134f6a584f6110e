"""LangChain's own standard test suite for retrievers (langchain-tests), run on MemoryServiceRetriever."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from api.inprocess import InProcessService
from memory_service.integrations.langchain import MemoryServiceRetriever

FACTS = [
    "I adopted a cat named Miso in March.",
    "My cat Miso likes to sleep on the piano.",
    "The vet said my cat needs a diet.",
    "I bought a scratching post for the cat.",
    "Our neighbour also has a cat, called Pixel.",
    "I want to adopt a second cat next year.",
]


class TestMemoryServiceRetrieverStandard(RetrieversIntegrationTests):
    params: dict[str, Any] = {}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _service(cls, local: InProcessService) -> Iterator[None]:
        client = local.client()
        client.ingest(
            [{"user_id": "std", "role": "user", "speaker": "Kim", "content": text} for text in FACTS], wait=True
        )
        cls.params = {"client": client, "async_client": local.async_client(), "user_id": "std"}
        yield

    @property
    def retriever_constructor(self) -> type[MemoryServiceRetriever]:
        return MemoryServiceRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def retriever_query_example(self) -> str:
        return "What do you know about my cat?"
