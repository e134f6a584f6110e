"""Train the learned ranker (`memory_service.context.ranking`) on LoCoMo-shaped dev files.

    python -m benchmarks.train_ranker \
        --set locomo=../shared/bench/locomo/locomo_dev.json --set beam=../shared/bench/beam/beam_dev.json \
        --data-dir /tmp/ranker --out benchmarks/results/ranker.json \
        --model memory_service/context/models/ranker.json

For every set: ingest (and consolidate) into `--data-dir/<name>` once, ask every question
that has evidence turns through hybrid retrieval with the hand-set fusion, and keep one
row of `ranking.FEATURES` per candidate, labelled 1 when the unit's text holds at least half of an
evidence turn's content (not when it merely cites one: see `Rows`).
The rows are cached (`features.npz`), so retraining takes seconds.

Validation (JSON out, and a table): conversation-grouped K-fold inside each set, across
all sets, and across sets (train on one, test on the other). The measure is content
recall of the top k candidates (share of a question's evidence turns with most of their
content stems in those candidates' texts, as `memory-service eval` counts it on the
context), learned ranker vs the hand-set fusion's order, for k = 5, 10, 20, 40. The model
written to `--model` is fitted on every set; its JSON prediction is checked against
scikit-learn's before it is written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from benchmarks.query_context import ingest_once
from memory_service.context.ranking import FEATURES, LearnedRanker, candidate_features
from memory_service.domain import Scope
from memory_service.eval import locomo
from memory_service.eval.recall import CONTENT_RECALL_THRESHOLD, content_stems
from memory_service.eval.run import EvalConfig, eval_settings
from memory_service.service import MemoryService

KS = (5, 10, 20, 40)
PARAMS = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 40, "l2_regularization": 1.0,
          "early_stopping": False, "random_state": 0}


@dataclass
class Rows:
    """Candidate rows of one set: features, labels, and which question / conversation each belongs to.

    Labels and the measure follow what the predictor reads, not provenance: a candidate is
    a positive when its text holds at least LABEL_SHARE of some evidence turn's content
    stems, whatever it cites (`eval.recall.content_stems`); `covered` keeps, per candidate,
    which evidence stems its text holds, so recall of the top k is computed on their union.
    """

    x: np.ndarray
    y: np.ndarray
    question: np.ndarray  # question index, rows of a question contiguous in hand-fusion order
    conversation: np.ndarray  # conversation index
    covered: list[list[set[str]]]  # per question, per candidate row: "turn|stem" of evidence stems in its text
    evidence: list[dict[str, int]]  # per question: evidence turn -> its distinct content stems


LABEL_SHARE = 0.5  # share of an evidence turn's stems a unit's text must hold to be a positive


def _evidence_stems(turns: dict[str, Any], evidence: list[str]) -> dict[str, set[str]]:
    return {d: content_stems(turns[d].content) for d in evidence if d in turns and content_stems(turns[d].content)}


async def collect(name: str, path: Path, data_dir: Path, progress: Progress) -> Rows:
    cache = data_dir / name / "features.npz"
    meta_path = data_dir / name / "features.json"
    if cache.is_file() and meta_path.is_file():
        data = np.load(cache, allow_pickle=False)
        meta = json.loads(meta_path.read_text())
        if meta["features"] == list(FEATURES) and meta.get("label_share") == LABEL_SHARE:
            covered = [[set(h) for h in q] for q in meta["covered"]]
            return Rows(data["x"], data["y"], data["question"], data["conversation"], covered, meta["evidence"])
    samples = locomo.select_samples(path, None)
    settings = eval_settings(EvalConfig(path=path, budgets=[512]), data_dir / name, samples)
    settings.ranker = None
    (data_dir / name).mkdir(parents=True, exist_ok=True)
    service = await MemoryService.open(settings, run_jobs=False)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    questions: list[np.ndarray] = []
    conversations: list[np.ndarray] = []
    covered: list[list[list[str]]] = []
    evidence: list[dict[str, int]] = []
    try:
        task = progress.add_task(f"{name}: ingest", total=None)
        await ingest_once(service, samples, consolidate=True)
        progress.update(task, total=1, completed=1)
        asked = [(n, s, q) for n, s in enumerate(samples) for q in locomo.sample_questions(s) if q.evidence and not q.abstention]
        task = progress.add_task(f"{name}: retrieve", total=len(asked))
        turns_by_sample = {str(s["sample_id"]): {t.dia_id: t for t in locomo.sample_turns(s)} for s in samples}
        for conversation, sample, q in asked:
            sample_id = str(sample["sample_id"])
            wanted = _evidence_stems(turns_by_sample[sample_id], q.evidence)
            if not wanted:
                progress.advance(task)
                continue
            result = await service.retriever.retrieve(Scope(user_id=sample_id), q.question)
            rows_covered: list[list[str]] = []
            labels: list[bool] = []
            for c in result.candidates:
                text = content_stems(c.unit.text)
                rows_covered.append(sorted(f"{d}|{s}" for d, stems in wanted.items() for s in stems & text))
                labels.append(any(len(stems & text) >= LABEL_SHARE * len(stems) for stems in wanted.values()))
            number = len(evidence)
            xs.append(candidate_features(result.candidates, result.analysis))
            ys.append(np.asarray(labels, dtype=np.int8))
            questions.append(np.full(len(labels), number, dtype=np.int32))
            conversations.append(np.full(len(labels), conversation, dtype=np.int32))
            covered.append(rows_covered)
            evidence.append({d: len(stems) for d, stems in wanted.items()})
            progress.advance(task)
    finally:
        await service.close()
    rows = Rows(np.concatenate(xs), np.concatenate(ys), np.concatenate(questions), np.concatenate(conversations),
                [[set(h) for h in q] for q in covered], evidence)
    np.savez_compressed(cache, x=rows.x, y=rows.y, question=rows.question, conversation=rows.conversation)
    meta_path.write_text(json.dumps({"features": list(FEATURES), "label_share": LABEL_SHARE, "covered": covered,
                                     "evidence": evidence}))
    return rows


def recall_at(rows: Rows, scores: np.ndarray, ks: tuple[int, ...] = KS) -> dict[int, float]:
    """Content recall of the k best-scored candidates: per question, the share of evidence turns
    with >= CONTENT_RECALL_THRESHOLD of their stems in the union of those candidates' texts."""
    out: dict[int, list[float]] = {k: [] for k in ks}
    for q in np.unique(rows.question):
        idx = np.flatnonzero(rows.question == q)
        order = idx[np.argsort(-scores[idx], kind="stable")]
        positions = order - idx[0]  # rows of a question are in hand-fusion order
        for k in ks:
            found = set().union(*(rows.covered[q][p] for p in positions[:k])) if len(positions) else set()
            per_turn = {d: 0 for d in rows.evidence[q]}
            for item in found:
                per_turn[item.split("|", 1)[0]] += 1
            hits = sum(per_turn[d] >= CONTENT_RECALL_THRESHOLD * n for d, n in rows.evidence[q].items())
            out[k].append(hits / len(rows.evidence[q]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def hand_scores(rows: Rows) -> np.ndarray:
    """The hand-set order: rows arrive sorted by it, so a decreasing score per question reproduces it."""
    scores = np.zeros(len(rows.y))
    for q in np.unique(rows.question):
        idx = np.flatnonzero(rows.question == q)
        scores[idx] = -np.arange(len(idx))
    return scores


def fit(rows: Rows) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(**PARAMS)
    model.fit(rows.x, rows.y)
    return model


def compare(train: Rows, test: Rows) -> dict[str, Any]:
    model = fit(train)
    return {
        "learned": recall_at(test, model.decision_function(test.x)),
        "hand": recall_at(test, hand_scores(test)),
        "questions": len(np.unique(test.question)),
    }


def grouped_cv(rows: Rows, folds: int) -> dict[str, Any]:
    """K-fold with whole conversations held out; recall pooled over all held-out questions."""
    groups = rows.conversation
    folds = min(folds, len(np.unique(groups)))
    learned = np.zeros(len(rows.y))
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(rows.x, rows.y, groups):
        model = HistGradientBoostingClassifier(**PARAMS).fit(rows.x[train_idx], rows.y[train_idx])
        learned[test_idx] = model.decision_function(rows.x[test_idx])
    return {"learned": recall_at(rows, learned), "hand": recall_at(rows, hand_scores(rows)),
            "questions": len(np.unique(rows.question)), "folds": folds}


def merge(sets: dict[str, Rows]) -> Rows:
    """All sets as one: question and conversation indices offset so they stay distinct."""
    xs, ys, qs, cs, covered, evidence = [], [], [], [], [], []
    q_offset = c_offset = 0
    for rows in sets.values():
        xs.append(rows.x)
        ys.append(rows.y)
        qs.append(rows.question + q_offset)
        cs.append(rows.conversation + c_offset)
        covered.extend(rows.covered)
        evidence.extend(rows.evidence)
        q_offset += len(rows.evidence)
        c_offset += int(rows.conversation.max()) + 1
    return Rows(np.concatenate(xs), np.concatenate(ys), np.concatenate(qs), np.concatenate(cs), covered, evidence)


def export(model: HistGradientBoostingClassifier, trained_on: dict[str, int]) -> dict[str, Any]:
    """The fitted ensemble as plain arrays (see `ranking.LearnedRanker`).

    scikit-learn keeps the trees in `_predictors` (a private attribute, stable across
    releases, and the only way to read them); the caller checks the exported model's
    logits against `decision_function` before writing it. Leaf values already carry the
    learning rate, hence `learning_rate` 1. The features never hold NaN, so the
    missing-value branch is not needed.
    """
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        trees.append({
            "feature": [-1 if is_leaf else int(f) for f, is_leaf in zip(nodes["feature_idx"], leaf, strict=True)],
            "threshold": [float(t) for t in nodes["num_threshold"]],
            "left": [int(v) for v in nodes["left"]],
            "right": [int(v) for v in nodes["right"]],
            "value": [float(v) for v in nodes["value"]],
        })
    return {
        "kind": "gradient_boosted_trees",
        "features": list(FEATURES),
        "base": float(np.ravel(model._baseline_prediction)[0]),
        "learning_rate": 1.0,
        "params": PARAMS,
        "trained_on": trained_on,
        "trees": trees,
    }


def split_gain(model: HistGradientBoostingClassifier) -> dict[str, float]:
    """Each feature's share of the ensemble's total split gain, largest first."""
    gain = np.zeros(len(FEATURES))
    for (predictor,) in model._predictors:
        nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
        np.add.at(gain, nodes["feature_idx"], nodes["gain"])
    gain /= gain.sum() or 1.0
    return {FEATURES[i]: round(float(gain[i]), 4) for i in np.argsort(-gain)}


def _table(console: Console, title: str, results: dict[str, dict[str, Any]]) -> None:
    table = Table(title=title)
    table.add_column("validation")
    table.add_column("questions", justify="right")
    for k in KS:
        table.add_column(f"hand @{k}", justify="right")
        table.add_column(f"learned @{k}", justify="right")
    for name, r in results.items():
        cells = [name, str(r["questions"])]
        for k in KS:
            cells += [f"{r['hand'][k]:.3f}", f"{r['learned'][k]:.3f}"]
        table.add_row(*cells)
    console.print(table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", required=True, help="NAME=PATH of a LoCoMo-shaped file (repeat).")
    parser.add_argument("--data-dir", type=Path, required=True, help="Ingested state and cached features per set.")
    parser.add_argument("--out", type=Path, required=True, help="Validation results (JSON).")
    parser.add_argument("--model", type=Path, help="Write the model fitted on every set here (JSON).")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    paths = {}
    for item in args.set:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.error(f"--set {item!r}: expected NAME=PATH of an existing file")
        paths[name] = Path(path)
    args.paths = paths
    return args


async def main(args: argparse.Namespace) -> None:
    paths: dict[str, Path] = args.paths
    console = Console(width=200)
    started = time.perf_counter()
    with Progress(console=console) as progress:
        sets = {name: await collect(name, path, args.data_dir, progress) for name, path in paths.items()}
    results: dict[str, dict[str, Any]] = {}
    for name, rows in sets.items():
        results[f"{name}: conversation-grouped CV"] = grouped_cv(rows, args.folds)
    if len(sets) > 1:
        results["all sets: conversation-grouped CV"] = grouped_cv(merge(sets), args.folds)
        for train in sets:
            for test in sets:
                if train != test:
                    results[f"train {train}, test {test}"] = compare(sets[train], sets[test])
    _table(console, "Content recall of the top k candidates", results)
    everything = merge(sets)
    final = fit(everything)
    report: dict[str, Any] = {
        "features": list(FEATURES),
        "params": PARAMS,
        "rows": {name: {"candidates": len(r.y), "positives": int(r.y.sum()), "questions": len(r.evidence)}
                 for name, r in sets.items()},
        "validation": {name: {**r, "learned": {str(k): v for k, v in r["learned"].items()},
                              "hand": {str(k): v for k, v in r["hand"].items()}} for name, r in results.items()},
        "split_gain": split_gain(final),
        "seconds": time.perf_counter() - started,
    }
    if args.model:
        exported = export(final, {name: len(r.evidence) for name, r in sets.items()})
        mismatch = float(np.abs(LearnedRanker(exported).logits(everything.x) - final.decision_function(everything.x)).max())
        if mismatch > 1e-3:
            raise SystemExit(f"exported model disagrees with scikit-learn by {mismatch}")
        args.model.parent.mkdir(parents=True, exist_ok=True)
        args.model.write_text(json.dumps(exported, separators=(",", ":")))
        report["model"] = {"path": str(args.model), "trees": len(exported["trees"]), "max_logit_mismatch": mismatch}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    console.print(f"wrote {args.out}" + (f" and {args.model}" if args.model else ""))


if __name__ == "__main__":
    # One OpenMP thread: on a busy machine scikit-learn's spinning threads made a fit 30x slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        asyncio.run(main(parse_args()))
