"""An in-process memory service (real SQLite, FAISS and embedding model) for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.inprocess import InProcessService
from memory_service.index.embedding import SentenceTransformerEmbedder
from memory_service.settings import Settings


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[InProcessService]:
    data_dir = tmp_path_factory.mktemp("inprocess")
    with InProcessService(Settings(data_dir=data_dir), embedder=embedder) as service:
        yield service
