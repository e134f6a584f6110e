"""Predictor-token counting for the service: `compressors.text.tokens`, the one place that counts."""

from compressors.text.tokens import count_tokens, count_tokens_many, count_tokens_once, encoding, truncate_to_tokens

__all__ = ["count_tokens", "count_tokens_many", "count_tokens_once", "encoding", "truncate_to_tokens"]
