"""Mutual information between contexts and their compressions, scored by a proxy LM.

From "An Information Theoretic Perspective on Agentic System Design": for N
windows x_i and their compressions z_i,

    I(X;Z) ~ mean_i [ log p(z_i|x_i) - log( (1/N) sum_l p(z_i|x_l) ) ]

clipped at 0; it cannot exceed log N. The sequence log-probabilities are summed
from the proxy model's own logits (llama.cpp `eval` + `scores`, or a transformers
forward pass: `compressors.lm.scoring`), not from a completion API's echo/logprobs output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from compressors.lm.client import SequenceScorer


@dataclass
class MIEstimate:
    n: int
    nats: float
    bits: float
    bits_per_output_token: float
    output_tokens: float  # mean per compression
    input_tokens: float  # mean per context
    compression_ratio: float  # output tokens / input tokens
    per_item_nats: list[float] = field(default_factory=list)

    @property
    def upper_bound_nats(self) -> float:
        return math.log(self.n) if self.n else 0.0


def mi_from_logprobs(logp: np.ndarray) -> tuple[float, list[float]]:
    """(clipped estimate, per-item terms) from logp[i, l] = log p(z_i | x_l)."""
    n = logp.shape[0]
    if n == 0:
        return 0.0, []
    peak = logp.max(axis=1, keepdims=True)
    log_mean = (peak + np.log(np.exp(logp - peak).sum(axis=1, keepdims=True))).ravel() - math.log(n)
    per_item = [float(logp[i, i] - log_mean[i]) for i in range(n)]
    return max(0.0, float(np.mean(per_item))), per_item


def logprob_matrix(contexts: Sequence[str], compressions: Sequence[str], scorer: SequenceScorer) -> np.ndarray:
    continuations = [scorer.text_tokens(z) for z in compressions]
    logp = np.empty((len(compressions), len(contexts)))
    for col, context in enumerate(contexts):
        logp[:, col] = scorer.continuation_logprobs(scorer.prompt_tokens(context), continuations)
    return logp


def estimate_mi(contexts: Sequence[str], compressions: Sequence[str], scorer: SequenceScorer) -> MIEstimate:
    if len(contexts) != len(compressions):
        raise ValueError("one compression per context")
    logp = logprob_matrix(contexts, compressions, scorer)
    nats, per_item = mi_from_logprobs(logp)
    out_tokens = [len(scorer.text_tokens(z)) for z in compressions]
    in_tokens = [len(scorer.text_tokens(x)) for x in contexts]
    n = len(contexts)
    mean_out = sum(out_tokens) / n if n else 0.0
    bits = nats / math.log(2)
    return MIEstimate(
        n=n,
        nats=nats,
        bits=bits,
        bits_per_output_token=bits / mean_out if mean_out else 0.0,
        output_tokens=mean_out,
        input_tokens=sum(in_tokens) / n if n else 0.0,
        compression_ratio=sum(out_tokens) / sum(in_tokens) if sum(in_tokens) else 0.0,
        per_item_nats=per_item,
    )
