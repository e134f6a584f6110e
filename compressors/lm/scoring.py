"""Log-probabilities of token sequences under a proxy LM, from the model's own logits.

llama.cpp (`eval` + `scores`, the prompt's KV cache reused for every continuation) or a
transformers forward pass. The mutual-information estimate (`compressors.mi`) and token
pruning (`memory_service.context.pruning`) score with these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compressors.lm.batch_scoring import DEFAULT_BATCH_TOKENS, BatchedContinuationScorer
from compressors.lm.client import SequenceScorer
from compressors.lm.models import load_causal_lm, load_llama, model_label, packaged_gguf

PROMPT = "Events:\n{x}\n\nMemory notes about these events:\n"
DEFAULT_SCORER_CONTEXT = 2048


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
    its KV cache reused for every continuation.

    `continuation_logprobs` (the MI estimate) packs all continuations of a prompt into
    multi-sequence batches (`compressors.lm.batch_scoring`) unless `batched=False`;
    `continuation_token_logprobs` (pruning) and `exact_continuation_logprobs` decode one
    continuation at a time: the reference the batched path is tested against.
    """

    def __init__(self, model: str | None = None, context_tokens: int | None = None, threads: int | None = None,
                 batched: bool = True, batch_tokens: int | None = None) -> None:
        self.context_tokens = int(context_tokens or DEFAULT_SCORER_CONTEXT)
        self.llm = load_llama(model, self.context_tokens, threads, logits_all=True)
        self.label = model_label(model or packaged_gguf())
        self.batched = batched
        self.batch_tokens = int(batch_tokens or DEFAULT_BATCH_TOKENS)
        self._batcher: BatchedContinuationScorer | None = None

    def prompt_tokens(self, context: str) -> list[int]:
        return list(self.llm.tokenize(PROMPT.format(x=context).encode(), add_bos=True, special=False))

    def text_tokens(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=False)) if text else []

    def continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        if not self.batched:
            return self.exact_continuation_logprobs(prompt, continuations)
        return [float(lp.sum()) for lp in self.batched_token_logprobs(prompt, continuations)]

    def exact_continuation_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[float]:
        return [float(lp.sum()) for lp in self.continuation_token_logprobs(prompt, continuations)]

    def batched_token_logprobs(self, prompt: list[int], continuations: Sequence[list[int]]) -> list[np.ndarray]:
        """As `continuation_token_logprobs`, all continuations in multi-sequence batches."""
        longest = max((len(c) for c in continuations), default=0)
        prompt = fit_prompt(prompt, self.context_tokens - longest)
        if self._batcher is None:
            self._batcher = BatchedContinuationScorer(self.llm, self.context_tokens, self.batch_tokens)
        return self._batcher.token_logprobs(prompt, continuations)

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
        return LlamaCppScorer(model, options.get("context_tokens"), options.get("threads"),
                              batched=options.get("batched", True))
    if backend == "transformers":
        return TransformersScorer(model, options.get("device"), options.get("threads"), options.get("context_tokens"))
    raise ValueError(f"unknown scorer backend {backend!r}: llama_cpp or transformers")
