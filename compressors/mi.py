"""Mutual information between contexts and their compressions, scored by a proxy LM.

From "An Information Theoretic Perspective on Agentic System Design": for N
windows x_i and their compressions z_i,

    I(X;Z) ~ mean_i [ log p(z_i|x_i) - log( (1/N) sum_l p(z_i|x_l) ) ]

clipped at 0; it cannot exceed log N. The sequence log-probabilities are summed
from the proxy model's own logits (llama.cpp `eval` + `scores`, or a transformers
forward pass), not from a completion API's echo/logprobs output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from compressors.models import model_label, packaged_gguf

PROMPT = "Events:\n{x}\n\nMemory notes about these events:\n"
DEFAULT_SCORER_CONTEXT = 2048


class SequenceScorer(Protocol):
    label: str

    def prompt_tokens(self, context: str) -> list[int]: ...

    def text_tokens(self, text: str) -> list[int]: ...

    def continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        """log p(continuation | prompt), summed over the continuation's tokens, for each continuation."""
        ...


def log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    return logits - (peak + np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True)))


def token_logprobs(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """log-softmax(logits[k])[targets[k]] for each k: row k predicts token k."""
    if not len(targets):
        return np.zeros(0)
    rows = log_softmax_rows(logits)
    return rows[np.arange(len(targets)), np.asarray(targets)]


def token_logprob_sum(logits: np.ndarray, targets: Sequence[int]) -> float:
    """Sum of log-softmax(logits[k])[targets[k]]: row k predicts token k."""
    return float(token_logprobs(logits, targets).sum())


class LlamaCppScorer:
    """Any GGUF (default the packaged SmolLM2). The prompt is evaluated once per context and
    its KV cache reused for every continuation."""

    def __init__(self, model: str | None = None, context_tokens: int | None = None, threads: int | None = None) -> None:
        from compressors.llamacpp import load_llama

        self.context_tokens = int(context_tokens or DEFAULT_SCORER_CONTEXT)
        self.llm = load_llama(model, self.context_tokens, threads, logits_all=True)
        self.label = model_label(model or packaged_gguf())

    def prompt_tokens(self, context: str) -> list[int]:
        return list(self.llm.tokenize(PROMPT.format(x=context).encode(), add_bos=True, special=False))

    def text_tokens(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=False)) if text else []

    def continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        return [float(lp.sum()) for lp in self.continuation_token_logprobs(prompt, continuations)]

    def continuation_token_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[np.ndarray]:
        """log p(token | prompt, earlier tokens) for every token of each continuation."""
        longest = max((len(c) for c in continuations), default=0)
        prompt = fit_prompt(prompt, self.context_tokens - longest)
        self.llm.reset()
        self.llm.eval(prompt)
        out = []
        for tokens in continuations:
            if not tokens:
                out.append(np.zeros(0))
                continue
            self.llm.n_tokens = len(prompt)  # drop the previous continuation (eval clears its KV cells)
            self.llm.eval(tokens)
            logits = self.llm.scores[len(prompt) - 1 : len(prompt) + len(tokens) - 1]
            out.append(token_logprobs(logits, tokens))
        return out

    def token_piece(self, token: int) -> bytes:
        return bytes(self.llm.detokenize([token]))

    def token_pieces(self, tokens: Sequence[int]) -> list[bytes]:
        return [self.token_piece(t) for t in tokens]

    def bos_tokens(self) -> list[int]:
        return [int(self.llm.token_bos())]


class TransformersScorer:
    """Any HF causal LM (path, hub id or .gguf file); one forward pass per (context, continuation)."""

    def __init__(self, model: str | None = None, device: str | None = None, threads: int | None = None,
                 context_tokens: int | None = None) -> None:
        from compressors.hf import load_causal_lm

        self.lm, self.tokenizer, self.device = load_causal_lm(model, device, threads)
        self.context_tokens = int(context_tokens or DEFAULT_SCORER_CONTEXT)
        self.label = model_label(model or packaged_gguf())

    def prompt_tokens(self, context: str) -> list[int]:
        return list(self.tokenizer(PROMPT.format(x=context), add_special_tokens=True)["input_ids"])

    def text_tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        import torch

        longest = max((len(c) for c in continuations), default=0)
        prompt = fit_prompt(prompt, self.context_tokens - longest)
        out = []
        for tokens in continuations:
            if not tokens:
                out.append(0.0)
                continue
            ids = torch.tensor([prompt + tokens], device=self.device)
            with torch.inference_mode():
                logits = self.lm(ids).logits[0, len(prompt) - 1 : -1].float().cpu().numpy()
            out.append(token_logprob_sum(logits, tokens))
        return out


def fit_prompt(prompt: list[int], room: int) -> list[int]:
    """Keep the first token (BOS) and the end of a prompt too long for the context."""
    if len(prompt) <= room:
        return prompt
    if room < 2:
        raise ValueError("a compression is longer than the scorer's context")
    return prompt[:1] + prompt[len(prompt) - room + 1 :]


def create_scorer(backend: str = "llama_cpp", model: str | None = None, **options: Any) -> SequenceScorer:
    if backend == "llama_cpp":
        return LlamaCppScorer(model, options.get("context_tokens"), options.get("threads"))
    if backend == "transformers":
        return TransformersScorer(model, options.get("device"), options.get("threads"), options.get("context_tokens"))
    raise ValueError(f"unknown scorer backend {backend!r}: llama_cpp or transformers")


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
