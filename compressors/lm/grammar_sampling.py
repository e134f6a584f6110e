"""Greedy decoding under a GBNF grammar, checking the grammar on one token first.

llama-cpp-python's sampler chain (penalties, grammar, greedy) runs the grammar over the
whole vocabulary (49k tokens for SmolLM2) on every step. llama.cpp's own common sampler
instead picks a token without the grammar and asks the grammar about that token alone;
only when the grammar rejects it does it apply the grammar to every candidate and pick
again. The grammar only masks tokens (to -inf), so for greedy decoding both give the same
token: the best token the grammar allows.

The repeat penalty is llama.cpp's `penalties` sampler with repeat only (frequency and
presence 0) over the last `PENALTY_LAST_N` generated tokens, applied before the grammar,
as `Llama.create_chat_completion(repeat_penalty=...)` does.
"""

from __future__ import annotations

import ctypes
from collections import deque
from typing import Any

import numpy as np

PENALTY_LAST_N = 64  # llama_cpp.Llama's last_n_tokens_size
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


class GrammarRejected(RuntimeError):
    """No token of the vocabulary continues the grammar (should not happen with a valid grammar)."""


class GreedyGrammarSampler:
    """One sequence's sampler: its grammar state and repeat-penalty history."""

    def __init__(self, vocab: Any, n_vocab: int, grammar: str, root: str = "root", repeat_penalty: float = 1.0) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._grammar = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), root.encode("utf-8"))
        if not self._grammar:
            raise ValueError("llama.cpp could not parse the grammar")
        self.repeat_penalty = float(repeat_penalty)
        self._history: deque[int] = deque(maxlen=PENALTY_LAST_N)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(self._one, 1, -1, False)
        self._n_vocab = n_vocab
        self._all: Any = None  # the full candidate array, made on the first rejection
        self.full_passes = 0  # how often the grammar had to see the whole vocabulary

    def close(self) -> None:
        if self._grammar:
            self._lib.llama_sampler_free(self._grammar)
            self._grammar = None

    def __del__(self) -> None:
        self.close()

    def _penalise(self, logits: np.ndarray) -> None:
        if self.repeat_penalty == 1.0 or not self._history:
            return
        seen = np.fromiter(set(self._history), dtype=np.int64)
        values = logits[seen]
        logits[seen] = np.where(values <= 0, values * self.repeat_penalty, values / self.repeat_penalty)

    def _allows(self, token: int, logit: float) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, logit, 0.0
        self._one_array.data = ctypes.cast(self._one, ctypes.POINTER(self._lib.llama_token_data))
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        self._lib.llama_sampler_apply(self._grammar, ctypes.byref(self._one_array))
        return bool(np.isfinite(self._one[0].logit))

    def _best_allowed(self, logits: np.ndarray) -> int:
        self.full_passes += 1
        if self._all is None:
            self._all = (self._lib.llama_token_data * self._n_vocab)()
            self._all_view = np.frombuffer(self._all, dtype=_TOKEN_DATA)
        view = self._all_view
        view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        view["logit"] = logits[: self._n_vocab]
        view["p"] = 0.0
        array = self._lib.llama_token_data_array(
            ctypes.cast(self._all, ctypes.POINTER(self._lib.llama_token_data)), self._n_vocab, -1, False
        )
        self._lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        # the grammar masks in place and keeps the order (and size) of the candidates
        masked = np.frombuffer(
            (ctypes.c_char * (array.size * _TOKEN_DATA.itemsize)).from_address(ctypes.addressof(array.data.contents)),
            dtype=_TOKEN_DATA,
        )
        best = int(np.argmax(masked["logit"]))
        if not np.isfinite(masked["logit"][best]):
            raise GrammarRejected("the grammar allows no token here")
        return int(masked["id"][best])

    def pick(self, logits: np.ndarray) -> int:
        """The greedy token for `logits` (this step's row; penalised in place), not yet accepted."""
        self._penalise(logits)
        token = int(np.argmax(logits))
        if self._allows(token, float(logits[token])):
            return token
        return self._best_allowed(logits)

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self._grammar, token)
        self._history.append(token)
