"""Near-duplicate and update candidates for new units, from the tenant's FAISS index.

Merge and supersession compare each new unit with (a) every unit of its owner at or above
the restatement threshold and (b) its owner's `top` most similar units at or above the
supersession threshold. Both sets come from a k-NN search of the tenant index per new
unit (one batched search for a run), not from comparing the owner's units with each other.

The tenant index also holds other owners' units and abstractions, so k grows (x4 per
round) for the new units whose first k neighbours could still hide a wanted owner unit:
a query is done when its k-th score is below the restatement threshold and, below the
supersession threshold or with `top` owner units already found. The result is then the
same as an exhaustive comparison (ties at the k-th score aside), without listing the
owner's ids.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from memory_service.domain import MemoryUnit, Scope
from memory_service.index.sync import IndexSync
from stores.sql.store import SqlStore

FIRST_K = 64


@dataclass
class Neighbours:
    """Per new unit: the owner's base units near it, `(unit id, cosine)` best first; and the units."""

    near: dict[int, list[tuple[int, float]]]
    units: dict[int, MemoryUnit]


async def neighbours(
    store: SqlStore,
    index_sync: IndexSync,
    owner: Scope,
    fresh: list[tuple[MemoryUnit, np.ndarray]],
    restatement_threshold: float,
    supersede_threshold: float,
    top: int,
) -> Neighbours:
    """Candidates for the level-0 units of `fresh` among the owner's valid level-0 units (see module).

    The index must have caught up with the change log after `fresh` was read, so that it
    holds the new units themselves (each meets the others through the index).
    """
    units: dict[int, MemoryUnit] = {u.id: u for u, _ in fresh if u.level == 0}
    queries = [(u, v) for u, v in fresh if u.level == 0]
    near: dict[int, dict[int, float]] = {u.id: {} for u, _ in queries}
    if not queries:
        return Neighbours({}, units)
    vectors = np.stack([v for _, v in queries]).astype(np.float32)
    index = index_sync.indexes.tenant(owner.tenant)
    pending = list(range(len(queries)))
    k = FIRST_K
    known: dict[int, bool] = {}  # unit id -> is one of the owner's base units
    while pending:

        def search(rows: list[int] = pending, k: int = k) -> tuple[np.ndarray, np.ndarray, int]:
            with index_sync.indexes.lock:
                scores, ids = index.search_many(vectors[rows], k)
                return scores, ids, len(index)

        scores, ids, total = await asyncio.to_thread(search)
        unseen = {int(i) for i in np.unique(ids) if i >= 0 and int(i) not in known}
        if unseen:
            base = await store.consolidation.owner_base_units(owner, list(unseen))
            units.update(base)
            known.update((i, i in base) for i in unseen)
        still: list[int] = []
        for row, q in enumerate(pending):
            unit = queries[q][0]
            found = 0
            for uid, score in zip(ids[row], scores[row], strict=True):
                if uid >= 0 and known.get(int(uid)):
                    near[unit.id].setdefault(int(uid), float(score))
                    found += 1
            last = float(scores[row][-1]) if scores.shape[1] else -1.0
            exhausted = scores.shape[1] >= total
            may_hide = last >= restatement_threshold or (last >= supersede_threshold and found < top)
            if may_hide and not exhausted:
                still.append(q)
        pending, k = still, k * 4
    ordered = {uid: sorted(c.items(), key=lambda item: -item[1]) for uid, c in near.items()}
    return Neighbours(ordered, units)
