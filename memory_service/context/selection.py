"""Query-aware compression into a token budget: which units, and which of their sentences.

Greedy by marginal information gain (MMR / COMI style): at each step take the piece
with the highest relevance to the query minus its redundancy with what is already
chosen, until nothing else fits the budget. Redundancy is counted twice: the max cosine
of the stored unit vectors to the chosen pieces, and the share of the piece's content
stems the chosen pieces already show (a summary restating units already in the context,
or a unit its summary already holds, adds few new words even when its vector differs). Long
units are cut to the sentences that carry query words before they compete; a unit that
adds nothing new (near-duplicate of a chosen one) is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from compressors.text.extract import split_sentences
from compressors.text.words import stem_words, stems
from memory_service.context.analysis import QueryAnalysis
from memory_service.context.config import DEFAULT_SELECTION, SelectionParams
from memory_service.context.retrieval import Candidate


@dataclass
class Piece:
    """A chosen unit and the part of its text the context shows."""

    candidate: Candidate
    text: str
    relevance: float
    trimmed: bool = False


def relevances(candidates: Sequence[Candidate], analysis: QueryAnalysis | None, params: SelectionParams) -> list[float]:
    """Fused rank score scaled to (0, 1], boosted by the symbolic matches the analysis asked for."""
    top = max((c.score for c in candidates), default=0.0) or 1.0
    out = []
    for c in candidates:
        r = c.score / top
        if analysis is not None and analysis.time_range is not None and c.in_time_range:
            r *= 1.0 + params.time_boost
        if c.entity_match:
            r *= 1.0 + params.entity_boost
        out.append(r)
    return out


def trim_to_query(text: str, terms: set[str], line_tokens: Callable[[str], int], limit: int) -> tuple[str, bool]:
    """Keep the sentences that share a stem with the query (all of them if none or all do), in order."""
    if not terms or line_tokens(text) <= limit:
        return text, False
    parts: list[str] = []
    for sentence in split_sentences(text):
        if parts and sentence.startswith("("):  # an aside (an image caption) belongs to what it follows
            parts[-1] = f"{parts[-1]} {sentence}"
        else:
            parts.append(sentence)
    if len(parts) < 2:
        return text, False
    hits = [p for p in parts if terms & stems(p)]
    if not hits or len(hits) == len(parts):
        return text, False
    return " ".join(hits), True


def select(
    candidates: Sequence[Candidate],
    analysis: QueryAnalysis | None,
    budget_tokens: int,
    line_tokens: Callable[[str], int],
    group_tokens: Callable[[Candidate], tuple[str, int]],
    display: Callable[[Candidate], str],
    params: SelectionParams = DEFAULT_SELECTION,
) -> list[Piece]:
    """Pieces to show, in choice order, whose summed line and group-header costs fit `budget_tokens`.

    `line_tokens(text)` is the cost of one rendered line, `group_tokens(candidate)` the key
    and cost of the header its line sits under (a date), paid once per group.
    """
    pool = list(candidates[: params.pool])
    if not pool or budget_tokens <= 0:
        return []
    rel = relevances(pool, analysis, params)
    terms = set(stem_words(analysis.terms)) if analysis is not None else set()
    texts: list[str] = []
    trimmed: list[bool] = []
    costs: list[int] = []
    for c in pool:
        text, cut = trim_to_query(display(c), terms, line_tokens, params.trim_above_tokens)
        texts.append(text)
        trimmed.append(cut)
        costs.append(line_tokens(text))
    groups = [group_tokens(c) for c in pool]
    dim = next((c.vector.shape[0] for c in pool if c.vector is not None), 0)
    vectors = np.zeros((len(pool), dim), dtype=np.float32)
    has_vector = np.zeros(len(pool), dtype=bool)
    for i, c in enumerate(pool):
        if c.vector is not None:
            vectors[i] = c.vector
            has_vector[i] = True
    max_sim = np.zeros(len(pool), dtype=np.float32)
    piece_stems = [stems(t) for t in texts]
    covered_share = np.zeros(len(pool), dtype=np.float32)
    covered: set[str] = set()
    relevance = np.asarray(rel, dtype=np.float32)
    open_ = np.ones(len(pool), dtype=bool)
    opened_groups: set[str] = set()
    used = 0
    chosen: list[Piece] = []
    line_costs = np.asarray(costs, dtype=np.float32)
    header_costs = np.asarray([g[1] for g in groups], dtype=np.float32)
    mean_cost = float(line_costs.mean()) or 1.0
    while open_.any():
        gain = relevance - params.redundancy * max_sim - params.novelty * covered_share
        if params.cost_exponent:
            total = line_costs + header_costs * np.asarray([g[0] not in opened_groups for g in groups])
            gain = np.where(gain > 0, gain / (total / mean_cost) ** params.cost_exponent, gain)
        gain[~open_] = -np.inf
        best = int(np.argmax(gain))
        open_[best] = False
        group, header_cost = groups[best]
        cost = costs[best] + (0 if group in opened_groups else header_cost)
        if used + cost > budget_tokens or max_sim[best] >= params.duplicate:
            continue
        used += cost
        opened_groups.add(group)
        chosen.append(Piece(pool[best], texts[best], rel[best], trimmed[best]))
        if has_vector[best] and dim:
            sims = vectors @ vectors[best]
            sims[~has_vector] = 0.0
            np.maximum(max_sim, sims, out=max_sim)
        if params.novelty:
            covered |= piece_stems[best]
            for i in np.flatnonzero(open_):
                if piece_stems[i]:
                    covered_share[i] = len(piece_stems[i] & covered) / len(piece_stems[i])
    return chosen
