"""Mutual information between contexts and their compressions, scored by a proxy LM.

From "An Information Theoretic Perspective on Agentic System Design": for N
windows x_i and their compressions z_i,

    I(X;Z) ~ mean_i [ log p(z_i|x_i) - log( (1/N) sum_l p(z_i|x_l) ) ]

clipped at 0; it cannot exceed log N. A compression that keeps a few of its window's own
words already identifies the window among N (measured: LoCoMo one-turn windows sit at the
bound for every compressor at N = 16 and N = 64), so the contrastive estimate ranks only
compressors that lose almost everything, and N^2 scorings make a large N dear.

`prior_gain` is the second measure: mean_i [log p(z_i|x_i) - log p(z_i|no events)], the bits
the window adds to the proxy's likelihood of its compression over the proxy's own prior (the
same prompt with no events) as the marginal. It is not bounded by log N and costs 2N scorings,
so it runs on full-size windows; it is the proxy's pointwise information, not a bound on
I(X;Z) (the prior is not the true marginal of Z). The sequence log-probabilities are summed
from the proxy model's own logits (llama.cpp `eval` + `scores`, or a transformers
forward pass: `compressors.lm.scoring`), not from a completion API's echo/logprobs output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
    # percentile bootstrap over windows (see `bootstrap_interval`), in bits
    ci_low_bits: float = 0.0
    ci_high_bits: float = 0.0

    @property
    def upper_bound_nats(self) -> float:
        return math.log(self.n) if self.n else 0.0

    @property
    def upper_bound_bits(self) -> float:
        return self.upper_bound_nats / math.log(2)


def mi_from_logprobs(logp: np.ndarray) -> tuple[float, list[float]]:
    """(clipped estimate, per-item terms) from logp[i, l] = log p(z_i | x_l)."""
    n = logp.shape[0]
    if n == 0:
        return 0.0, []
    peak = logp.max(axis=1, keepdims=True)
    log_mean = (peak + np.log(np.exp(logp - peak).sum(axis=1, keepdims=True))).ravel() - math.log(n)
    per_item = [float(logp[i, i] - log_mean[i]) for i in range(n)]
    return max(0.0, float(np.mean(per_item))), per_item


def bootstrap_interval(
    per_item_nats: Sequence[float], resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap of the (clipped) mean of the per-window terms, in nats.

    Windows are resampled with the score matrix held fixed: the interval says how much the
    estimate moves with the draw of positive pairs, for this batch of N candidates (the
    log N bound does not move).
    """
    low, high = mean_interval(per_item_nats, resamples, level, seed)
    return max(0.0, low), max(0.0, high)


def mean_interval(
    terms: Sequence[float], resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `terms` (unclipped)."""
    values = np.asarray(terms, dtype=np.float64)
    if len(values) < 2:
        value = float(values.mean()) if len(values) else 0.0
        return value, value
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean of a[i] - b[i] over the same windows, with its bootstrap interval: whether one
    compressor's per-window terms beat another's, beyond how much windows differ."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    low, high = mean_interval(diff)
    return (float(diff.mean()) if len(diff) else 0.0), low, high


@dataclass
class PriorGain:
    """mean_i [log p(z_i|x_i) - log p(z_i|no events)] in bits, with a bootstrap interval."""

    n: int
    bits: float
    ci_low_bits: float
    ci_high_bits: float
    bits_per_output_token: float
    per_item_bits: list[float] = field(default_factory=list)


def prior_gain(own: Sequence[float], prior: Sequence[float], output_tokens: Sequence[int]) -> PriorGain:
    """From own[i] = log p(z_i|x_i) and prior[i] = log p(z_i|no events), in nats.

    Unlike the contrastive estimate it is not clipped: a compression the window makes less
    likely than the prior does (text the window does not support) counts against it."""
    terms = (np.asarray(own, dtype=np.float64) - np.asarray(prior, dtype=np.float64)) / math.log(2)
    n = len(terms)
    if n == 0:
        return PriorGain(0, 0.0, 0.0, 0.0, 0.0)
    mean = float(terms.mean())
    low, high = mean_interval(terms)
    tokens = sum(output_tokens) / n
    return PriorGain(n, mean, low, high, mean / tokens if tokens else 0.0, [float(t) for t in terms])


def own_and_prior_logprobs(
    contexts: Sequence[str], compressions: Mapping[str, Sequence[str]], scorer: SequenceScorer,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """log p(z_i|x_i) and log p(z_i|no events) of every compressor's outputs: each context's prompt
    is scored once with that window's compressions only (N + 1 prompts, 2N continuations per
    compressor, against N^2 for `logprob_matrices`)."""
    names = list(compressions)
    tokens = {name: [scorer.text_tokens(z) for z in compressions[name]] for name in names}
    if any(len(t) != len(contexts) for t in tokens.values()):
        raise ValueError("one compression per context")
    own = {name: np.empty(len(contexts)) for name in names}
    for i, context in enumerate(contexts):
        scores = scorer.continuation_logprobs(scorer.prompt_tokens(context), [tokens[name][i] for name in names])
        for name, score in zip(names, scores, strict=True):
            own[name][i] = score
        if progress is not None:
            progress(1)
    return own, prior_logprobs(compressions, scorer)


def prior_logprobs(compressions: Mapping[str, Sequence[str]], scorer: SequenceScorer) -> dict[str, np.ndarray]:
    """log p(z|no events) of every compressor's outputs, in one call (the empty-context prompt)."""
    names = list(compressions)
    every = [scorer.text_tokens(z) for name in names for z in compressions[name]]
    scores = scorer.continuation_logprobs(scorer.prompt_tokens(""), every)
    out, start = {}, 0
    for name in names:
        out[name] = np.asarray(scores[start : start + len(compressions[name])])
        start += len(compressions[name])
    return out


def logprob_matrix(contexts: Sequence[str], compressions: Sequence[str], scorer: SequenceScorer) -> np.ndarray:
    continuations = [scorer.text_tokens(z) for z in compressions]
    logp = np.empty((len(compressions), len(contexts)))
    for col, context in enumerate(contexts):
        logp[:, col] = scorer.continuation_logprobs(scorer.prompt_tokens(context), continuations)
    return logp


def logprob_matrices(
    contexts: Sequence[str], compressions: Mapping[str, Sequence[str]], scorer: SequenceScorer,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """`logprob_matrix` for several compressors of the same contexts: each context's prompt is
    scored once with every compressor's continuations in the same call (one batched pass)."""
    names = list(compressions)
    tokens = {name: [scorer.text_tokens(z) for z in compressions[name]] for name in names}
    if any(len(t) != len(contexts) for t in tokens.values()):
        raise ValueError("one compression per context")
    every = [z for name in names for z in tokens[name]]
    out = {name: np.empty((len(contexts), len(contexts))) for name in names}
    for col, context in enumerate(contexts):
        scores = scorer.continuation_logprobs(scorer.prompt_tokens(context), every)
        for k, name in enumerate(names):
            out[name][:, col] = scores[k * len(contexts) : (k + 1) * len(contexts)]
        if progress is not None:
            progress(1)
    return out


def estimate_mi(
    contexts: Sequence[str], compressions: Sequence[str], scorer: SequenceScorer, logp: np.ndarray | None = None
) -> MIEstimate:
    """The estimate for one compressor; `logp` if already scored (`logprob_matrices`)."""
    if len(contexts) != len(compressions):
        raise ValueError("one compression per context")
    if logp is None:
        logp = logprob_matrix(contexts, compressions, scorer)
    nats, per_item = mi_from_logprobs(logp)
    out_tokens = [len(scorer.text_tokens(z)) for z in compressions]
    in_tokens = [len(scorer.text_tokens(x)) for x in contexts]
    n = len(contexts)
    mean_out = sum(out_tokens) / n if n else 0.0
    bits = nats / math.log(2)
    low, high = bootstrap_interval(per_item)
    return MIEstimate(
        n=n,
        nats=nats,
        bits=bits,
        bits_per_output_token=bits / mean_out if mean_out else 0.0,
        output_tokens=mean_out,
        input_tokens=sum(in_tokens) / n if n else 0.0,
        compression_ratio=sum(out_tokens) / sum(in_tokens) if sum(in_tokens) else 0.0,
        per_item_nats=per_item,
        ci_low_bits=low / math.log(2),
        ci_high_bits=high / math.log(2),
    )
