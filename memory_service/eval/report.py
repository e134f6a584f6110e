"""The LoCoMo eval's report: the run aggregated into JSON-ready data (`report`), the terminal
tables (rich) and the recall-vs-budget plot (matplotlib)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from memory_service.eval.recall import (
    CONTENT_RECALL_THRESHOLD,
    CONTENT_RECALL_THRESHOLDS,
    PROVENANCE_THRESHOLD,
    mean,
    percentile,
)
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
    citations = sum(a.citations for _, a in answers)
    abstention = [a for r, a in answers if r.abstention]
    answerable = [a for r, a in answers if not r.abstention]
    return {
        "questions": len(answers),
        "evidence_recall": mean([a.evidence_recall(r.evidence) or 0.0 for r, a in with_evidence]),
        "evidence_recall_turns": sum(len(a.hits) for _, a in with_evidence) / evidence_turns if evidence_turns else None,
        "content_recall": mean([a.content_recall(r.evidence) or 0.0 for r, a in with_evidence]),
        "content_recall_50": mean([a.content_recall_50(r.evidence) or 0.0 for r, a in with_evidence]),
        "answer_recall": mean([a.answer_recall for _, a in answers if a.answer_recall is not None]),
        "provenance_precision": sum(a.supported_citations for _, a in answers) / citations if citations else None,
        "citations_per_unit": citations / units if (units := sum(a.units for _, a in answers)) else None,
        "stopword_share": mean([a.stopword_share for _, a in answers if a.stopword_share is not None]),
        "empty_rate": mean([float(a.empty) for _, a in answers]),
        "abstention_questions": len(abstention),
        "abstain_rate": mean([float(a.empty) for a in abstention]),
        "false_empty_rate": mean([float(a.empty) for a in answerable]),
        "context_tokens_mean": mean(tokens),
        "context_tokens_p95": percentile(tokens, 95),
        "units_mean": mean([a.units for _, a in answers]),
        "cited_turns_mean": mean([a.cited_turns for _, a in answers]),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
    }


def headline(run: EvalRun) -> list[int]:
    """The categories the overall figures cover: the configured ones, else every category with an answerable question."""
    if run.config.headline:
        return sorted(run.config.headline)
    return sorted({r.category for r in run.records if not r.abstention})


def results(run: EvalRun) -> dict[str, dict[str, dict[str, Any]]]:
    """method -> budget -> {"overall": the answerable questions of the headline categories,
    "abstention": every abstention question, "by_category": {"1": ..., ...}}."""
    out: dict[str, dict[str, Any]] = {}
    categories = sorted({r.category for r in run.records})
    wanted = set(headline(run))
    overall_records = [r for r in run.records if r.category in wanted and not r.abstention]
    abstention_records = [r for r in run.records if r.abstention]
    for method in METHODS:
        out[method] = {}
        for budget in run.config.budgets:
            out[method][str(budget)] = {
                "overall": summarize(overall_records, method, budget),
                "abstention": summarize(abstention_records, method, budget),
                "by_category": {
                    str(c): summarize([r for r in run.records if r.category == c], method, budget) for c in categories
                },
            }
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
    names = run.category_names or {}
    data: dict[str, Any] = {
        "config": {
            "file": str(run.config.path),
            "dataset": Path(run.config.path).stem,
            "conversations": sorted({r.sample_id for r in run.records}, key=[r.sample_id for r in run.records].index),
            "budgets": run.config.budgets,
            "compressor": run.settings.get("compressor"),
            "consolidate": run.config.consolidate,
            "data_dir": str(run.config.data_dir) if run.config.data_dir else None,
            "git": git_commit(),
            "started_at": run.started_at,
            "seconds": run.seconds,
            "settings": run.settings,
            "categories": {
                str(c): {
                    "name": names.get(c, ""),
                    "questions": sum(r.category == c for r in run.records),
                    "abstention_questions": sum(r.category == c and r.abstention for r in run.records),
                }
                for c in sorted({r.category for r in run.records})
            },
            "headline": headline(run),
            "baseline": "BM25 (bm25s, English stop words, Snowball stems) over raw turns, greedy fill to the budget"
            + (", shown under their session dates" if run.config.bm25_dates else ""),
            "bm25_dates": run.config.bm25_dates,
            "metrics": {
                "overall": "answerable questions (not abstention ones) of the headline categories",
                "abstention": "questions whose question_type contains 'abstention' or that have an adversarial_answer",
                "content_recall_threshold": CONTENT_RECALL_THRESHOLD,
                "content_recall_thresholds": list(CONTENT_RECALL_THRESHOLDS),
                "provenance_threshold": PROVENANCE_THRESHOLD,
                "evidence_recall": "mean over questions of the share of evidence turns cited",
                "evidence_recall_turns": "evidence turns cited / all evidence turns",
                "provenance_precision": "(unit, cited event) pairs whose event has >= 50% of its content stems in the "
                "unit's shown text / all such pairs, pooled over the questions",
                "stopword_share": "mean over contexts of stop words / words (NLTK's English stop words)",
                "unit_tokens_per_event_token": "ingest: cl100k tokens of all valid units' text / of all events' content",
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


def _name(data: dict[str, Any], category: str) -> str:
    return f"{category} {data['config'].get('categories', {}).get(category, {}).get('name', '')}".strip()


def _headline_label(data: dict[str, Any]) -> str:
    return ",".join(str(c) for c in data["config"].get("headline", [])) or "all"


def recall_table(data: dict[str, Any]) -> Table:
    """Ours vs BM25 per budget: the overall metrics, abstention, tokens, latency."""
    results = data["results"]
    table = Table(
        title=f"{data['config'].get('dataset', '')}: overall = answerable questions of categories {_headline_label(data)}"
    )
    for column in (
        "method", "budget", "n", "tokens mean/p95", "evidence", "content@60", "content@50", "answer tok",
        "prov. precision", "stop words", "false empty", "abstain (n)", "p50/p95 ms",
    ):
        table.add_column(column, justify="left" if column == "method" else "right")
    for budget in data["config"]["budgets"]:
        for method in METHODS:
            row = results[method][str(budget)]
            overall, abstention = row["overall"], row["abstention"]
            table.add_row(
                LABELS[method],
                str(budget),
                str(overall["questions"]),
                f"{_f(overall['context_tokens_mean'], 0)}/{_f(overall['context_tokens_p95'], 0)}",
                _f(overall["evidence_recall"]),
                _f(overall["content_recall"]),
                _f(overall["content_recall_50"]),
                _f(overall["answer_recall"]),
                _f(overall["provenance_precision"]),
                _f(overall["stopword_share"]),
                _f(overall["false_empty_rate"]),
                f"{_f(abstention['abstain_rate'])} ({abstention['questions']})",
                f"{_f(overall['latency_ms_p50'], 1)}/{_f(overall['latency_ms_p95'], 1)}",
                end_section=method == METHODS[-1],
            )
    return table


def category_table(data: dict[str, Any], method: str = OURS) -> Table:
    """Every metric per category for one method, one row per budget and category."""
    table = Table(title=f"{LABELS[method]}: per category")
    columns = (
        "budget", "category", "n", "evidence", "content@60", "content@50", "answer tok", "prov. precision",
        "stop words", "abstain", "false empty", "tokens", "cited turns",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "category" else "right")
    for budget in data["config"]["budgets"]:
        by_category = data["results"][method][str(budget)]["by_category"]
        for c, s in by_category.items():
            table.add_row(
                str(budget),
                _name(data, c),
                str(s["questions"]),
                _f(s["evidence_recall"]),
                _f(s["content_recall"]),
                _f(s["content_recall_50"]),
                _f(s["answer_recall"]),
                _f(s["provenance_precision"]),
                _f(s["stopword_share"]),
                _f(s["abstain_rate"]),
                _f(s["false_empty_rate"]),
                _f(s["context_tokens_mean"], 0),
                _f(s["cited_turns_mean"], 1),
                end_section=c == list(by_category)[-1],
            )
    return table


def ingest_line(data: dict[str, Any]) -> str:
    ingest = data["ingest"]
    line = (
        f"ingest: {ingest['turns']} turns in {ingest['seconds']:.1f} s ({ingest['turns_per_s']:.1f} turns/s), "
        f"{ingest['units']} units, {_f(ingest.get('unit_tokens_per_event_token'))} unit tokens per event token"
    )
    if data["consolidation"]:
        c = data["consolidation"]
        ratio = c["unit_tokens_after"] / ingest["event_tokens"] if ingest["event_tokens"] else None
        line += (
            f"; consolidation {c['seconds']:.1f} s: {c['merged']} merged, {c['superseded']} superseded, "
            f"{c['abstractions_created']} abstractions, {c['units_after']} units after ({_f(ratio)} unit tokens per event token)"
        )
    return line


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
    """Content recall (60%) and answer-token recall vs budget, service and BM25: overall and
    one panel per category that has answerable questions; the dataset in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = data["config"]["budgets"]
    results = data["results"]
    categories = [
        c for c, info in data["config"]["categories"].items() if info["questions"] > info["abstention_questions"]
    ]
    panels = [(f"overall ({_headline_label(data)})", None), *[(_name(data, c), c) for c in categories]]
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.2 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    lines = (
        (OURS, "content_recall", "o-", "C0"), (OURS, "answer_recall", "^-", "C1"),
        (BM25, "content_recall", "o--", "C0"), (BM25, "answer_recall", "^--", "C1"),
    )
    for ax, (title, category) in zip(axes.flat, panels, strict=False):
        for method, metric, style, color in lines:
            values = [
                (results[method][str(b)]["overall"] if category is None else results[method][str(b)]["by_category"][category])[
                    metric
                ]
                for b in budgets
            ]
            label = f"{LABELS[method]}: {'content' if metric == 'content_recall' else 'answer tokens'}"
            ax.plot(budgets, [v if v is not None else float("nan") for v in values], style, color=color, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("token budget")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("recall")
    axes[0][0].legend(loc="lower right", fontsize="x-small")
    config = data["config"]
    fig.suptitle(
        f"{config.get('dataset', '')}: {len(config['conversations'])} conversations ({config['compressor']}); "
        "solid: service, dashed: BM25 over raw turns",
        fontsize="small",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
