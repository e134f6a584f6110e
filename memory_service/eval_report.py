"""Presenting a LoCoMo eval: the terminal tables (rich) and the recall-vs-budget plot (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from memory_service.eval_locomo import BM25, CATEGORY_NAMES, METHODS, OURS

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
