"""Token pruning inside a unit by surprisal from the local LM (LLMLingua style), off by default.

Each word's surprisal is -log p(word | the words before it) from the proxy LM
(`compressors.lm.scoring.LlamaCppScorer`, the packaged SmolLM2 GGUF unless told otherwise),
summed over the word's LM tokens. The lowest-surprisal words are what the model could
guess back (function words, filler), so they are dropped until `keep_ratio` of the
unit's words is left; words that carry facts are never dropped whatever their score:
anything with a digit, a capital letter (names, "I", sentence starts), month and
weekday names, time words ("last", "ago", "weekend"), negations, words with punctuation attached (they hold the sentence
structure, and the speaker's "X:"), and words sharing a stem with the query. A pruned
text is used only when it is fewer predictor tokens (`memory_service.tokens`) than
the original.

Scores are cached per (unit id, unit hash): a unit is immutable until the change log
replaces it, so it is scored once and reused by every later query (compress once,
reuse). With `condition_on_query` the query is prefixed when scoring (LongLLMLingua);
that costs an LM pass per unit per new query, as the cache key then carries the query.
Without it the query still steers what is kept through its protected words.
An LM that cannot be loaded or fails leaves every text unpruned.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compressors.lm.client import TokenScorer
from compressors.text.words import MONTH_NUMBERS, STOPWORDS, WEEKDAY_NAMES, query_words, stem_words
from memory_service.tokens import count_tokens
from stores.lru import LRU

log = logging.getLogger(__name__)

PROMPT = "Memory note:"
QUERY_PROMPT = "Question: {query}\nMemory note:"
_WORD = re.compile(r"\S+")
_PLAIN = re.compile(r"[a-z]+(?:['\u2019][a-z]+)?")
WEEKDAYS = frozenset(WEEKDAY_NAMES) | {"today", "yesterday", "tomorrow"}
NEGATIONS = frozenset("no not never nor none nothing nobody without neither cannot".split())
TIME_WORDS = frozenset(
    "ago last next before after since until till earlier later recently soon week weekend weeks month months "
    "year years day days night morning evening tonight first once twice".split()
)


@dataclass
class PruneStats:
    scored: int = 0  # units scored by the LM
    cache_hits: int = 0
    pruned: int = 0  # texts returned shorter
    words_dropped: int = 0
    failures: int = 0
    lm_seconds: float = 0.0


def word_spans(text: str) -> list[tuple[int, int]]:
    """Byte spans of the whitespace-separated words of `text` (UTF-8)."""
    spans = []
    for m in _WORD.finditer(text):
        start = len(text[: m.start()].encode())
        spans.append((start, start + len(m.group(0).encode())))
    return spans


def word_surprisals(pieces: Sequence[bytes], logprobs: Sequence[float], text: str) -> list[float] | None:
    """Per word of `text`, the summed surprisal of the LM tokens ending inside it.

    `pieces` are the tokens' bytes, which must spell `text` exactly (None otherwise: a
    tokenizer that normalises the text cannot be mapped back to words).
    """
    if b"".join(pieces) != text.encode():
        return None
    spans = word_spans(text)
    starts = [s for s, _ in spans]
    out = [0.0] * len(spans)
    position = 0
    for piece, logprob in zip(pieces, logprobs, strict=True):
        position += len(piece)
        last = position - 1
        i = bisect.bisect_right(starts, last) - 1
        if i >= 0 and last < spans[i][1]:
            out[i] += -float(logprob)
    return out


def protected(word: str, query_stems: set[str]) -> bool:
    """Words that carry facts or structure, kept whatever the LM thinks of them."""
    if not _PLAIN.fullmatch(word):  # digits, capitals, punctuation attached, other scripts
        return True
    lower = word.lower()
    if lower in MONTH_NUMBERS or lower in WEEKDAYS or lower in NEGATIONS or lower in TIME_WORDS or lower.endswith(("n't", "n\u2019t")):
        return True
    return stem_words([lower])[0] in query_stems


def prune_words(words: Sequence[str], surprisals: Sequence[float], keep_ratio: float, query_stems: set[str]) -> list[str]:
    """Drop the least surprising unprotected words until `keep_ratio` of the words is left:
    stopwords first (SmolLM2 also finds "mountains" after "camping in the" unsurprising,
    and a content word is worth more to recall than its surprisal says), then content words."""
    droppable = [i for i, w in enumerate(words) if not protected(w, query_stems)]
    n_drop = min(len(droppable), math.floor(len(words) * (1.0 - keep_ratio)))
    if n_drop <= 0:
        return list(words)
    order = sorted(droppable, key=lambda i: (words[i].lower() not in STOPWORDS, surprisals[i], i))
    dropped = set(order[:n_drop])
    return [w for i, w in enumerate(words) if i not in dropped]


def query_stems_of(query: str) -> set[str]:
    return set(stem_words(query_words(query)))


class TokenPruner:
    """`scorer_factory` is called once, on first use (loading a model takes a moment);
    if it fails, pruning is off for the pruner's life and every text comes back as it was.
    The service's scorer runs in a child process (`compressors.lm.isolated.IsolatedScorer`):
    building it never fails, and a model that cannot load or a crash costs only the calls
    made until the child restarts, each returning the texts unpruned."""

    def __init__(
        self,
        scorer_factory: Callable[[], TokenScorer],
        keep_ratio: float = 0.7,
        min_words: int = 8,
        condition_on_query: bool = False,
        tokenizer: str = "cl100k_base",
        cache_size: int = 100_000,
    ) -> None:
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError("keep_ratio must be in (0, 1]")
        self.scorer_factory = scorer_factory
        self.keep_ratio = keep_ratio
        self.min_words = min_words
        self.condition_on_query = condition_on_query
        self.tokenizer = tokenizer
        self.stats = PruneStats()
        self._scores: LRU[tuple[int, str, str, str], list[float]] = LRU(cache_size)
        self._scorer: TokenScorer | None = None
        self._broken: str | None = None
        self._lock = threading.Lock()  # one LM evaluation at a time

    @property
    def scorer(self) -> TokenScorer | None:
        """The scorer once loaded (None before the first scoring, or when it could not load)."""
        return self._scorer

    def close(self) -> None:
        close = getattr(self._scorer, "close", None)
        if callable(close):
            close()

    def _load(self) -> TokenScorer | None:
        if self._scorer is None and self._broken is None:
            try:
                self._scorer = self.scorer_factory()
            except Exception as exc:
                self._broken = f"{type(exc).__name__}: {exc}"[:300]
                self.stats.failures += 1
                log.warning("token pruning is off: the LM could not be loaded (%s)", self._broken)
        return self._scorer

    def _score(self, items: Sequence[tuple[int, str, str]], query: str) -> dict[int, list[float]]:
        """Word surprisals per unit id, from the cache or the LM (units it cannot map are left out)."""
        context = query if self.condition_on_query else ""
        found: dict[int, list[float]] = {}
        missing = []
        for unit_id, unit_hash, text in items:
            cached = self._scores.get((unit_id, unit_hash, text, context))
            if cached is not None:
                found[unit_id] = cached
                self.stats.cache_hits += 1
            else:
                missing.append((unit_id, unit_hash, text))
        if not missing:
            return found
        with self._lock:
            scorer = self._load()
            if scorer is None:
                return found
            started = time.perf_counter()
            try:
                prompt_text = QUERY_PROMPT.format(query=query) if context else PROMPT
                prompt = [*scorer.bos_tokens(), *scorer.text_tokens(prompt_text)]
                continuations = [scorer.text_tokens(f" {text}") for _, _, text in missing]
                logprobs = scorer.continuation_token_logprobs(prompt, continuations)
                for (unit_id, unit_hash, text), tokens, lp in zip(missing, continuations, logprobs, strict=True):
                    per_word = word_surprisals(scorer.token_pieces(tokens), lp.tolist(), f" {text}")
                    self.stats.scored += 1
                    if per_word is not None:
                        self._scores.put((unit_id, unit_hash, text, context), per_word)
                        found[unit_id] = per_word
            except Exception as exc:
                self.stats.failures += 1
                log.warning("token pruning failed (%s); texts stay unpruned", f"{type(exc).__name__}: {exc}"[:300])
            finally:
                self.stats.lm_seconds += time.perf_counter() - started
        return found

    def prune_many(self, items: Sequence[tuple[int, str, str]], query: str) -> dict[int, str]:
        """Pruned text per unit id for (unit id, unit hash, text) items; a unit missing from the
        answer (too short, not shorter after pruning, LM unavailable) keeps its text."""
        long_enough = [item for item in items if len(item[2].split()) >= self.min_words]
        if not long_enough or self.keep_ratio >= 1.0:
            return {}
        scores = self._score(long_enough, query)
        stems = query_stems_of(query)
        out: dict[int, str] = {}
        for unit_id, _, text in long_enough:
            per_word = scores.get(unit_id)
            if per_word is None:
                continue
            words = _WORD.findall(text)
            kept = prune_words(words, per_word, self.keep_ratio, stems)
            pruned = " ".join(kept)
            if len(kept) < len(words) and count_tokens(pruned, self.tokenizer) < count_tokens(text, self.tokenizer):
                out[unit_id] = pruned
                self.stats.pruned += 1
                self.stats.words_dropped += len(words) - len(kept)
        return out

    def prune(self, unit_id: int, unit_hash: str, text: str, query: str) -> str:
        return self.prune_many([(unit_id, unit_hash, text)], query).get(unit_id, text)

