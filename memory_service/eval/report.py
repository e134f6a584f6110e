"""The LoCoMo eval's report: the run aggregated into JSON-ready data (`report`), the terminal
tables (rich) and the recall-vs-budget plot (matplotlib)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from memory_service.eval.locomo import ANSWERABLE, CATEGORY_NAMES
from memory_service.eval.recall import CONTENT_RECALL_THRESHOLD, mean, percentile
from memory_service.eval.run import BM25, METHODS, OURS, EvalRun, QuestionRecord


def git_commit() -> dict[str, Any] | None:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def summarize(records: Sequence[QuestionRecord], method: str, budget: int) -> dict[str, Any]:
    """Every metric for one method and budget over the given questions."""
    answers = [(r, r.answers[method][budget]) for r in records if budget in r.answers.get(method, {})]
    with_evidence = [(r, a) for r, a in answers if r.evidence]
    evidence_turns = sum(len(r.evidence) for r, _ in with_evidence)
    tokens = [a.tokens for _, a in answers]
    latencies = [a.latency_ms for _, a in answers]
    return {
        "questions": len(answers),
        "evidence_recall": mean([a.evidence_recall(r.evidence) or 0.0 for r, a in with_evidence]),
        "evidence_recall_turns": sum(len(a.hits) for _, a in with_evidence) / evidence_turns if evidence_turns else None,
        "content_recall": mean([a.content_recall(r.evidence) or 0.0 for r, a in with_evidence]),
        "answer_recall": mean([a.answer_recall for _, a in answers if a.answer_recall is not None]),
        "empty_rate": mean([float(a.empty) for _, a in answers]),
        "context_tokens_mean": mean(tokens),
        "context_tokens_p95": percentile(tokens, 95),
        "units_mean": mean([a.units for _, a in answers]),
        "cited_turns_mean": mean([a.cited_turns for _, a in answers]),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
    }


def results(run: EvalRun) -> dict[str, dict[str, dict[str, Any]]]:
    """method -> budget -> {"overall" (categories 1-4), "by_category": {"1".."5": ...}}."""
    out: dict[str, dict[str, Any]] = {}
    categories = sorted({r.category for r in run.records})
    for method in METHODS:
        out[method] = {}
        for budget in run.config.budgets:
            answerable = [r for r in run.records if r.category in ANSWERABLE]
            overall = summarize(answerable, method, budget)
            overall["false_empty_rate"] = overall.pop("empty_rate")
            by_category = {}
            for category in categories:
                summary = summarize([r for r in run.records if r.category == category], method, budget)
                key = "abstain_rate" if category == 5 else "false_empty_rate"
                summary[key] = summary.pop("empty_rate")
                by_category[str(category)] = summary
            out[method][str(budget)] = {"overall": overall, "by_category": by_category}
    return out


def worst_questions(run: EvalRun, per_category: int, budget: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per category, the service's worst questions at `budget` (default the largest): lowest
    evidence recall, then lowest content recall; with what BM25 found at the same budget."""
    budget = budget if budget is not None else max(run.config.budgets)
    out: dict[str, list[dict[str, Any]]] = {}
    for category in sorted({r.category for r in run.records}):
        rows = [r for r in run.records if r.category == category and r.evidence]
        rows.sort(
            key=lambda r: (
                r.answers[OURS][budget].evidence_recall(r.evidence),
                r.answers[OURS][budget].content_recall(r.evidence),
                r.id,
            )
        )
        out[str(category)] = [
            {
                "id": r.id,
                "question": r.question,
                "answer": r.answer,
                "evidence": r.evidence,
                "missed": [d for d in r.evidence if d not in r.answers[OURS][budget].hits],
                "evidence_recall": r.answers[OURS][budget].evidence_recall(r.evidence),
                "content_recall": r.answers[OURS][budget].content_recall(r.evidence),
                "bm25_evidence_recall": r.answers[BM25][budget].evidence_recall(r.evidence),
                "empty": r.answers[OURS][budget].empty,
                "tokens": r.answers[OURS][budget].tokens,
            }
            for r in rows[:per_category]
        ]
    return out


def report(run: EvalRun, include_questions: bool = True, worst: int = 0) -> dict[str, Any]:
    """Everything as JSON-ready data: config, ingest, results, and optionally per-question details."""
    data: dict[str, Any] = {
        "config": {
            "file": str(run.config.path),
            "conversations": sorted({r.sample_id for r in run.records}, key=[r.sample_id for r in run.records].index),
            "budgets": run.config.budgets,
            "compressor": run.settings.get("compressor"),
            "consolidate": run.config.consolidate,
            "data_dir": str(run.config.data_dir) if run.config.data_dir else None,
            "git": git_commit(),
            "started_at": run.started_at,
            "seconds": run.seconds,
            "settings": run.settings,
            "baseline": "BM25 (bm25s, English stop words, Snowball stems) over raw turns, greedy fill to the budget",
            "metrics": {
                "content_recall_threshold": CONTENT_RECALL_THRESHOLD,
                "evidence_recall": "mean over questions of the share of evidence turns cited",
                "evidence_recall_turns": "evidence turns cited / all evidence turns",
            },
        },
        "ingest": run.ingest,
        "consolidation": run.consolidation,
        "results": results(run),
    }
    if worst:
        data["worst"] = worst_questions(run, worst)
    if include_questions:
        data["questions"] = [r.to_json() for r in run.records]
    return data


# --------------------------------------------------------------------------- presentation

LABELS = {OURS: "service", BM25: "BM25 raw turns"}


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def recall_table(data: dict[str, Any]) -> Table:
    """Ours vs BM25 per budget: evidence recall overall and per category, the other recalls, tokens, latency."""
    results = data["results"]
    categories = sorted({c for m in results.values() for b in m.values() for c in b["by_category"]}, key=int)
    table = Table(title="LoCoMo evidence recall (mean over questions; overall = categories 1-4)")
    table.add_column("method")
    table.add_column("budget", justify="right")
    table.add_column("tokens mean/p95", justify="right")
    table.add_column("evidence", justify="right")
    for c in categories:
        if int(c) != 5:
            table.add_column(f"{c} {CATEGORY_NAMES.get(int(c), '')}", justify="right")
    table.add_column("content", justify="right")
    table.add_column("answer tok", justify="right")
    table.add_column("false empty", justify="right")
    table.add_column("5: abstain", justify="right")
    table.add_column("p50/p95 ms", justify="right")
    for budget in data["config"]["budgets"]:
        for method in METHODS:
            row = results[method][str(budget)]
            overall, by_category = row["overall"], row["by_category"]
            table.add_row(
                LABELS[method],
                str(budget),
                f"{_f(overall['context_tokens_mean'], 0)}/{_f(overall['context_tokens_p95'], 0)}",
                _f(overall["evidence_recall"]),
                *[_f(by_category[c]["evidence_recall"]) for c in categories if int(c) != 5],
                _f(overall["content_recall"]),
                _f(overall["answer_recall"]),
                _f(overall["false_empty_rate"]),
                _f(by_category.get("5", {}).get("abstain_rate")),
                f"{_f(overall['latency_ms_p50'], 1)}/{_f(overall['latency_ms_p95'], 1)}",
                end_section=method == METHODS[-1],
            )
    return table


def category_table(data: dict[str, Any], method: str = OURS) -> Table:
    """Every metric per category for one method, one row per budget and category."""
    table = Table(title=f"{LABELS[method]}: per category")
    for column in ("budget", "category", "n", "evidence", "evidence (turns)", "content", "answer tok", "empty", "tokens", "cited turns"):
        table.add_column(column, justify="right" if column != "category" else "left")
    for budget in data["config"]["budgets"]:
        by_category = data["results"][method][str(budget)]["by_category"]
        for c, s in by_category.items():
            table.add_row(
                str(budget),
                f"{c} {CATEGORY_NAMES.get(int(c), '')}",
                str(s["questions"]),
                _f(s["evidence_recall"]),
                _f(s["evidence_recall_turns"]),
                _f(s["content_recall"]),
                _f(s["answer_recall"]),
                _f(s.get("abstain_rate", s.get("false_empty_rate"))),
                _f(s["context_tokens_mean"], 0),
                _f(s["cited_turns_mean"], 1),
                end_section=c == list(by_category)[-1],
            )
    return table


def worst_table(worst: dict[str, list[dict[str, Any]]]) -> Table:
    table = Table(title="worst questions per category (service, largest budget)", show_lines=False)
    for column in ("id", "cat", "recall", "content", "bm25", "missed", "question"):
        table.add_column(column, overflow="fold")
    for category, rows in worst.items():
        for row in rows:
            table.add_row(
                row["id"],
                category,
                _f(row["evidence_recall"], 2),
                _f(row["content_recall"], 2),
                _f(row["bm25_evidence_recall"], 2),
                " ".join(row["missed"]),
                row["question"] + (" [empty]" if row["empty"] else ""),
            )
    return table


def plot(data: dict[str, Any], path: Path) -> None:
    """Evidence recall vs budget, both methods: overall (categories 1-4) and one panel per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = data["config"]["budgets"]
    results = data["results"]
    categories = sorted({c for m in results.values() for b in m.values() for c in b["by_category"]}, key=int)
    panels = [("overall (1-4)", None), *[(f"{c} {CATEGORY_NAMES.get(int(c), '')}", c) for c in categories]]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (title, category) in zip(axes[0], panels, strict=True):
        for method, style in ((OURS, "o-"), (BM25, "s--")):
            values = [
                (results[method][str(b)]["overall"] if category is None else results[method][str(b)]["by_category"][category])[
                    "evidence_recall"
                ]
                for b in budgets
            ]
            ax.plot(budgets, [v if v is not None else float("nan") for v in values], style, label=LABELS[method])
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_title(title)
        ax.set_xlabel("token budget")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("evidence recall")
    axes[0][0].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"LoCoMo: {', '.join(data['config']['conversations'])} ({data['config']['compressor']})", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
