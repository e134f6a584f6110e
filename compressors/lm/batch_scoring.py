"""Many continuations of one prompt in few llama.cpp decodes (multi-sequence batches).

The prompt is decoded once into sequence 0 of the KV cache. Each continuation then runs as
its own sequence (1..n_seq_max-1) whose cells start as a copy of sequence 0's
(`llama_memory_seq_cp`: in a unified KV cache the prompt's cells are shared, not duplicated);
the continuations' tokens are packed into batches of up to `n_batch` tokens across sequences,
and a finished sequence is removed (`llama_memory_seq_rm`) so that its slot and cells are
reused. Against one decode per continuation (`LlamaCppScorer.exact_token_logprobs`) this
fills each decode with hundreds of tokens instead of one compression's few dozen.

The context is a second llama.cpp context on the `Llama`'s model (its own KV cache, with
`n_seq_max` and `kv_unified` set, which `llama_cpp.Llama` does not expose).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BATCH_TOKENS = 512
MAX_SEQUENCES = 64


def log_softmax_picks(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log-softmax(logits[k])[targets[k]] per row, in float32 with a float64 normaliser."""
    peak = logits.max(axis=1)
    norm = np.log(np.exp(logits - peak[:, None]).sum(axis=1, dtype=np.float64)) + peak
    return logits[np.arange(len(targets)), targets].astype(np.float64) - norm


class BatchedContinuationScorer:
    """log p(token | prompt, earlier tokens) for many continuations of one prompt at once."""

    def __init__(self, llm: Any, context_tokens: int, batch_tokens: int = DEFAULT_BATCH_TOKENS,
                 sequences: int = MAX_SEQUENCES) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        # a multiple of 16: llama.cpp rounds the context's batch down to one (a decode of
        # n_batch tokens, all with logits, then fails an assertion: measured with 17)
        self.batch_tokens = max(16, int(batch_tokens) // 16 * 16)
        self.sequences = max(2, min(int(sequences) + 1, int(llama_cpp.llama_max_parallel_sequences())))
        # the `Llama`'s own settings (attention, KV types, threads), with room for the sequences
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx = int(context_tokens) + self.batch_tokens  # prompt + longest continuation, + one batch in flight
        params.n_batch = self.batch_tokens
        params.n_ubatch = self.batch_tokens
        params.n_seq_max = self.sequences
        params.kv_unified = True
        params.n_outputs_max = 0  # = n_batch: every token of a batch may give logits
        params.n_outputs_max_per_seq = 0  # = n_outputs_max
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=self.batch_tokens, embd=0, n_seq_max=1, verbose=False)
        self._memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        self.n_vocab = int(llm.n_vocab())

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()

    # ------------------------------------------------------------------ decoding

    def _decode(self, entries: Sequence[tuple[int, int, int]], outputs: Sequence[bool]) -> np.ndarray:
        """Decode (token, position, seq_id) entries; the logits of those flagged in `outputs`, in order."""
        batch = self._batch.batch
        batch.n_tokens = len(entries)
        for i, (token, pos, seq) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = outputs[i]
        self._ctx.decode(self._batch)
        rows = sum(outputs)
        if not rows:
            return np.zeros((0, self.n_vocab), dtype=np.float32)
        pointer = self._lib.llama_get_logits(self._ctx.ctx)
        flat = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(rows * self.n_vocab,))
        return flat.reshape(rows, self.n_vocab)

    def _prompt(self, prompt: Sequence[int]) -> np.ndarray:
        """Decode the prompt into sequence 0; the logits after its last token."""
        last = np.zeros(0, dtype=np.float32)
        for start in range(0, len(prompt), self.batch_tokens):
            chunk = prompt[start : start + self.batch_tokens]
            final = start + len(chunk) == len(prompt)
            logits = self._decode([(t, start + k, 0) for k, t in enumerate(chunk)],
                                  [final and k == len(chunk) - 1 for k in range(len(chunk))])
            if final:
                last = logits[0].copy()
        return last

    def token_logprobs(self, prompt: Sequence[int], continuations: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """For each continuation, the log-probability of each of its tokens after the prompt."""
        self._lib.llama_memory_clear(self._memory, True)
        if not prompt:
            raise ValueError("the prompt needs at least one token (BOS)")
        first = self._prompt(prompt)
        out = [np.zeros(len(c)) for c in continuations]
        starts = [c for c in range(len(continuations)) if continuations[c]]
        if starts:
            row = log_softmax_picks(first[None, :], np.array([0]))[0] - first[0]  # -log Z of the row
            for c in starts:
                out[c][0] = float(first[continuations[c][0]]) + row
        # Tokens to decode: all but the last of each continuation (the last predicts nothing we score).
        work = [c for c in starts if len(continuations[c]) > 1]
        live: dict[int, int] = {}
        free = list(range(self.sequences - 1, 0, -1))
        base = len(prompt)
        w, k = 0, 0  # next continuation in `work`, next token of it
        while w < len(work):
            entries: list[tuple[int, int, int]] = []
            owners: list[tuple[int, int]] = []  # (continuation, index of the token the row predicts)
            finished: list[int] = []
            while len(entries) < self.batch_tokens and w < len(work):
                c = work[w]
                tokens = continuations[c]
                if c not in live:
                    if not free:
                        break
                    live[c] = free.pop()
                    self._lib.llama_memory_seq_cp(self._memory, 0, live[c], -1, -1)
                take = min(len(tokens) - 1 - k, self.batch_tokens - len(entries))
                for j in range(k, k + take):
                    entries.append((tokens[j], base + j, live[c]))
                    owners.append((c, j + 1))
                k += take
                if k == len(tokens) - 1:
                    finished.append(c)
                    w, k = w + 1, 0
            logits = self._decode(entries, [True] * len(entries))
            targets = np.array([continuations[c][j] for c, j in owners])
            values = log_softmax_picks(logits, targets)
            for (c, j), value in zip(owners, values, strict=True):
                out[c][j] = value
            for c in finished:
                seq = live.pop(c)
                self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
                free.append(seq)
        return out
