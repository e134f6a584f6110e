"""The learned ranker: its features, its JSON form against scikit-learn, and its fallbacks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from benchmarks.train_ranker import PARAMS, Rows, export, recall_at
from memory_service.context.analysis import analyze
from memory_service.context.ranking import DEFAULT_MODEL, FEATURES, LearnedRanker, candidate_features, load_ranker
from memory_service.context.retrieval import Candidate
from memory_service.domain import MemoryUnit

T0 = datetime(2023, 5, 1, tzinfo=UTC)


def unit(uid: int, text: str, persons: list[str], days: int = 0, kind: str = "fact") -> MemoryUnit:
    return MemoryUnit(
        id=uid, tenant="t", user_id="u", text=text, persons=persons, kind=kind, source_event_ids=[f"e{uid}"],
        valid_from=T0 + timedelta(days=days), event_time=T0 + timedelta(days=days), compressor="extractive",
        compressor_version="1", hash=f"h{uid}", created_at=T0, updated_at=T0,
    )


def column(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, FEATURES.index(name)]


def test_features_describe_signals_coverage_speaker_and_time() -> None:
    analysis = analyze("What did Caroline paint at the pottery class?")
    candidates = [
        Candidate(unit(1, "Caroline: I painted a bowl at the pottery class.", ["Caroline"], 0), score=1.0, dense=0.8,
                  lexical=4.0, fused=1.4, entity_match=True),
        Candidate(unit(2, "Melanie: I went to a pottery class with Caroline.", ["Melanie", "Caroline"], 3), score=0.9,
                  dense=0.6, lexical=2.0, fused=1.0, neighbour=1.4),
        Candidate(unit(3, "Melanie: we camped by the lake.", ["Melanie"], 9, kind="event"), score=0.2, dense=0.2,
                  fused=0.2),
    ]
    x = candidate_features(candidates, analysis)
    assert x.shape == (3, len(FEATURES)) and x.dtype == np.float32
    assert column(x, "dense_rel").tolist() == pytest.approx([1.0, 0.75, 0.25])
    assert column(x, "lexical").tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert column(x, "lexical_rank")[2] == pytest.approx(np.log1p(3))  # not a lexical hit: last
    assert column(x, "speaker_named").tolist() == [1.0, 0.0, 0.0]
    assert column(x, "person_named").tolist() == [0.0, 1.0, 0.0]
    assert column(x, "time_position").tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    coverage = column(x, "coverage")
    assert coverage[0] > coverage[1] > coverage[2] == 0.0
    assert column(x, "kind_event").tolist() == [0.0, 0.0, 1.0]
    assert column(x, "neighbour")[1] == pytest.approx(1.4)
    assert candidate_features([], analysis).shape == (0, len(FEATURES))


def test_exported_trees_predict_what_scikit_learn_predicts() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, len(FEATURES))).astype(np.float32)
    y = ((x[:, 0] + 0.5 * x[:, 3] - x[:, 7] + rng.normal(scale=0.5, size=600)) > 0.5).astype(int)
    model = HistGradientBoostingClassifier(**dict(PARAMS, max_iter=30, min_samples_leaf=5)).fit(x, y)
    exported = json.loads(json.dumps(export(model, {"synthetic": 600})))
    ranker = LearnedRanker(exported)
    assert np.abs(ranker.logits(x) - model.decision_function(x)).max() < 1e-4
    assert np.allclose(ranker.scores(x), model.predict_proba(x)[:, 1], atol=1e-4)


def test_a_model_for_other_features_is_refused_and_the_packaged_one_falls_back(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"features": ["dense"], "base": 0, "learning_rate": 0.1, "trees": []}))
    with pytest.raises(ValueError, match="another feature list"):
        load_ranker(str(other))
    with pytest.raises(FileNotFoundError):
        load_ranker(str(tmp_path / "missing.json"))
    assert load_ranker(None) is None and load_ranker("none") is None
    packaged = load_ranker("default")
    assert packaged is None or isinstance(packaged, LearnedRanker)
    assert (packaged is not None) == DEFAULT_MODEL.is_file()


def test_recall_at_k_is_content_recall_of_the_best_scored_candidates_texts() -> None:
    # one question, two evidence turns of 2 and 5 stems; three candidates in hand order
    covered = [[set(), {"a|x", "a|y"}, {"b|1", "b|2", "b|3"}]]
    rows = Rows(np.zeros((3, len(FEATURES)), np.float32), np.array([0, 1, 1]), np.zeros(3, np.int32),
                np.zeros(3, np.int32), covered, [{"a": 2, "b": 5}])
    assert recall_at(rows, np.array([3.0, 2.0, 1.0]), ks=(1, 2, 3)) == {1: 0.0, 2: 0.5, 3: 1.0}
    assert recall_at(rows, np.array([0.0, 0.0, 9.0]), ks=(1,)) == {1: 0.5}  # b: 3 of 5 stems = 0.6
