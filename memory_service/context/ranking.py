"""Learned fusion of the retrieval signals (issue 13, lever 3).

Hybrid retrieval computes, for every candidate, the signals its hand-set formula adds up
(cosine, lexical score, entity and time matches, neighbours). `candidate_features` turns
those signals, plus a few cheap facts about the unit and the query (query-stem coverage,
whether the unit's speaker is the person the query names, where the unit sits in time
among the candidates), into one row per candidate. A `LearnedRanker` scores the rows with
a gradient-boosted tree ensemble trained by `benchmarks/train_ranker.py` on the dev sets
and shipped as JSON (`models/ranker.json`): plain arrays, read with numpy, so no pickle
and no dependence on the scikit-learn version that trained it.

The hand-set fusion is the default and the fallback (no model file, a model for another
feature list, `RetrievalConfig.ranker = None`): the packaged model wins inside each dev set
but loses when trained on one and tested on the other (docs/architecture.md, "Learned
ranking"), so it is opt-in (`MEMORY_SERVICE_RANKER=default`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from compressors.text.words import rarity_weights, stem_words, stems
from memory_service.context.analysis import QueryAnalysis

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).with_name("models") / "ranker.json"
KINDS = ("fact", "event", "preference", "procedure", "summary")

FEATURES: tuple[str, ...] = (
    "dense",  # cosine of query and unit
    "dense_rel",  # cosine / best cosine among the candidates
    "dense_rank",  # log(1 + rank by cosine)
    "lexical",  # lexical score / best lexical score (0 when not a lexical hit)
    "lexical_rank",  # log(1 + rank among lexical hits); log(1 + candidates) when not one
    "second_lexical",  # score in the multi-hop expansion's lexical search, scaled
    "neighbour",  # best hand-fused score of a session neighbour
    "fused_rank",  # log(1 + rank by the hand-set fusion)
    "entity_match",
    "in_time_range",
    "query_time_range",  # the query names a time
    "query_temporal",  # the query asks about time
    "query_multi_hop",
    "query_terms",  # log(1 + content terms of the query)
    "coverage",  # share of the query's content stems in the unit's text
    "idf_coverage",  # the same weighted by rarity among the candidates
    "speaker_named",  # the unit's first person (its speaker) is named in the query
    "person_named",  # another of the unit's persons is named in the query
    "query_names_person",  # the query names one of the candidates' persons at all
    "time_position",  # 0 = oldest candidate, 1 = newest
    "level",
    *(f"kind_{k}" for k in KINDS),
    "length",  # log(1 + words of the unit's text)
    "sources",  # log(1 + cited events)
    "importance",
)


class RankedSignals(Protocol):
    """What `candidate_features` reads of a retrieval candidate (`retrieval.Candidate`)."""

    dense: float | None
    lexical: float | None
    second_lexical: float
    neighbour: float
    fused: float
    entity_match: bool
    in_time_range: bool

    @property
    def unit(self) -> Any: ...


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the largest value, 1 for the next..."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(len(values), dtype=np.float32)
    return ranks


def candidate_features(candidates: Sequence[RankedSignals], analysis: QueryAnalysis) -> np.ndarray:
    """One row of `FEATURES` per candidate (float32, shape (n, len(FEATURES)))."""
    n = len(candidates)
    out = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if not n:
        return out
    col = {name: i for i, name in enumerate(FEATURES)}
    dense = np.asarray([c.dense if c.dense is not None else 0.0 for c in candidates], dtype=np.float32)
    lexical = np.asarray([c.lexical if c.lexical is not None else 0.0 for c in candidates], dtype=np.float32)
    is_lexical = np.asarray([c.lexical is not None for c in candidates])
    fused = np.asarray([c.fused for c in candidates], dtype=np.float32)
    top_dense = float(dense.max()) if dense.max() > 0 else 1.0
    top_lexical = float(lexical.max()) if lexical.max() > 0 else 1.0
    out[:, col["dense"]] = dense
    out[:, col["dense_rel"]] = dense / top_dense
    out[:, col["dense_rank"]] = np.log1p(_ranks(dense))
    out[:, col["lexical"]] = np.where(is_lexical, np.maximum(lexical, 0.0) / top_lexical, 0.0)
    lexical_ranks = _ranks(np.where(is_lexical, lexical, -np.inf))
    out[:, col["lexical_rank"]] = np.where(is_lexical, np.log1p(lexical_ranks), math.log1p(n))
    out[:, col["second_lexical"]] = [c.second_lexical for c in candidates]
    out[:, col["neighbour"]] = [c.neighbour for c in candidates]
    out[:, col["fused_rank"]] = np.log1p(_ranks(fused))
    out[:, col["entity_match"]] = [c.entity_match for c in candidates]
    out[:, col["in_time_range"]] = [c.in_time_range for c in candidates]
    out[:, col["query_time_range"]] = analysis.time_range is not None
    out[:, col["query_temporal"]] = analysis.temporal
    out[:, col["query_multi_hop"]] = analysis.multi_hop
    wanted = set(stem_words(analysis.terms))
    out[:, col["query_terms"]] = math.log1p(len(wanted))
    unit_stems = [stems(c.unit.text) for c in candidates]
    if wanted:
        # Rarity among the candidates: a query word every candidate has separates nothing.
        idf = rarity_weights(wanted, unit_stems)
        total_idf = sum(idf.values()) or 1.0
        for i, found in enumerate(unit_stems):
            shared = wanted & found
            out[i, col["coverage"]] = len(shared) / len(wanted)
            out[i, col["idf_coverage"]] = sum(idf[s] for s in shared) / total_idf
    named = {e.lower() for e in analysis.entities} | {t.lower() for t in analysis.terms}
    named |= {word.lower() for entity in analysis.entities for word in entity.split()}
    any_person = False
    for i, c in enumerate(candidates):
        persons = [p.lower() for p in c.unit.persons]
        if persons and persons[0] in named:
            out[i, col["speaker_named"]] = 1.0
            any_person = True
        if any(p in named for p in persons[1:]):
            out[i, col["person_named"]] = 1.0
            any_person = True
    out[:, col["query_names_person"]] = any_person
    times = np.asarray([(c.unit.event_time or c.unit.valid_from).timestamp() for c in candidates], dtype=np.float64)
    span = times.max() - times.min()
    out[:, col["time_position"]] = (times - times.min()) / span if span > 0 else 0.5
    for i, c in enumerate(candidates):
        unit = c.unit
        out[i, col["level"]] = unit.level
        if unit.kind in KINDS:
            out[i, col[f"kind_{unit.kind}"]] = 1.0
        out[i, col["length"]] = math.log1p(len(unit.text.split()))
        out[i, col["sources"]] = math.log1p(len(unit.source_event_ids))
        out[i, col["importance"]] = unit.importance
    return out


class LearnedRanker:
    """Gradient-boosted trees over `FEATURES`: logit = base + rate * sum of the trees' leaf values.

    The trees are padded into (trees, nodes) arrays and walked together, one level per
    step, so scoring a few hundred candidates is a dozen numpy operations, not one per tree.
    """

    def __init__(self, model: dict[str, Any]) -> None:
        if tuple(model.get("features", ())) != FEATURES:
            raise ValueError("ranker model was trained on another feature list")
        self.base = float(model["base"])
        self.rate = float(model["learning_rate"])
        trees = model["trees"]
        width = max((len(t["feature"]) for t in trees), default=1)
        shape = (len(trees), width)
        self.feature = np.full(shape, -1, dtype=np.int64)
        self.threshold = np.zeros(shape, dtype=np.float64)
        self.left = np.zeros(shape, dtype=np.int64)
        self.right = np.zeros(shape, dtype=np.int64)
        self.value = np.zeros(shape, dtype=np.float64)
        for i, t in enumerate(trees):
            n = len(t["feature"])
            self.feature[i, :n] = t["feature"]
            self.threshold[i, :n] = t["threshold"]
            self.left[i, :n] = t["left"]
            self.right[i, :n] = t["right"]
            self.value[i, :n] = t["value"]
        self.meta = {k: v for k, v in model.items() if k != "trees"}

    @classmethod
    def load(cls, path: Path) -> LearnedRanker:
        return cls(json.loads(path.read_text()))

    def logits(self, x: np.ndarray) -> np.ndarray:
        trees, rows = self.feature.shape[0], len(x)
        node = np.zeros((trees, rows), dtype=np.int64)
        tree_index = np.arange(trees)[:, None]
        row_index = np.broadcast_to(np.arange(rows), (trees, rows))
        while True:
            feature = self.feature[tree_index, node]
            inner = feature >= 0
            if not inner.any():
                break
            values = x[row_index, np.where(inner, feature, 0)]
            go_left = values <= self.threshold[tree_index, node]
            step = np.where(go_left, self.left[tree_index, node], self.right[tree_index, node])
            node = np.where(inner, step, node)
        return self.base + self.rate * self.value[tree_index, node].sum(axis=0)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Probability that a candidate holds evidence for the query, in (0, 1)."""
        return 1.0 / (1.0 + np.exp(-self.logits(x)))


def load_ranker(name: str | None) -> LearnedRanker | None:
    """"default" -> the packaged model; a path -> that file; None -> no learned ranker.

    A missing or unreadable packaged model falls back to the hand-set fusion with a
    warning; a path the user gave that does not load is an error.
    """
    if name is None or name == "none":
        return None
    if name == "default":
        try:
            return _packaged()
        except (OSError, ValueError, KeyError) as exc:
            log.warning("learned ranker unavailable (%s); using the hand-set fusion", exc)
            return None
    return LearnedRanker.load(Path(name))


@lru_cache(maxsize=1)
def _packaged() -> LearnedRanker:
    return LearnedRanker.load(DEFAULT_MODEL)
