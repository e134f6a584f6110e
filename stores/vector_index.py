"""FAISS dense indexes: one per tenant, filtered per query by the ids SQL allows.

One index per tenant (not per user/agent scope) because SQL already resolves which
units a query may see (scope, validity time); FAISS then only scores those ids
through an `IDSelectorBatch`. `benchmarks/faiss_partitioning.py` compares this with
one index per scope at 100k units.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)


def _file_stem(tenant: str) -> str:
    return tenant.encode().hex()


def use_gpu() -> bool:
    get = getattr(faiss, "get_num_gpus", None)
    return bool(get and get() > 0)


class TenantIndex:
    """An `IndexIDMap2` over inner product on normalised vectors (cosine)."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def upsert(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        id_array = np.asarray(ids, dtype=np.int64)
        self.index.remove_ids(id_array)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), id_array)

    def remove(self, ids: Sequence[int]) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int, allowed_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        if allowed_ids is None:
            scores, ids = self.index.search(query, min(k, len(self)))
        else:
            if not len(allowed_ids):
                return []
            selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
            scores, ids = self.index.search(query, min(k, len(allowed_ids)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def search_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest stored vectors of each row of `vectors` over the whole tenant:
        (scores, ids), each `len(vectors) x min(k, len(self))`, best first (consolidation's
        near-duplicate candidates; the caller filters them by owner)."""
        k = min(k, len(self))
        if k <= 0 or not len(vectors):
            return np.zeros((len(vectors), 0), dtype=np.float32), np.zeros((len(vectors), 0), dtype=np.int64)
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors of these ids (absent ids left out), for redundancy and expansion at query time."""
        out: dict[int, np.ndarray] = {}
        for unit_id in ids:
            try:
                out[unit_id] = self.index.reconstruct(int(unit_id))
            except (RuntimeError, AssertionError):  # not in the index (or an index type without reconstruct)
                continue
        return out


class VectorIndexes:
    """All tenants' indexes, persisted under `directory` with the change-log watermark they reached."""

    def __init__(self, dim: int, directory: Path | None) -> None:
        self.dim = dim
        self.directory = directory
        self.watermark = 0
        self.dirty = False
        self._tenants: dict[str, TenantIndex] = {}
        self.lock = threading.RLock()

    def tenant(self, tenant: str) -> TenantIndex:
        with self.lock:
            index = self._tenants.get(tenant)
            if index is None:
                index = self._tenants[tenant] = TenantIndex(self.dim)
            return index

    def tenants(self) -> list[str]:
        return list(self._tenants)

    def clear(self) -> None:
        with self.lock:
            self._tenants.clear()
            self.watermark = 0
            self.dirty = True

    def apply(self, tenant: str, upserts: dict[int, np.ndarray], deletes: Iterable[int], watermark: int) -> None:
        with self.lock:
            index = self.tenant(tenant)
            index.remove(list(deletes))
            if upserts:
                ids = list(upserts)
                index.upsert(ids, np.stack([upserts[i] for i in ids]))
            self.watermark = max(self.watermark, watermark)
            self.dirty = True

    def advance(self, watermark: int) -> None:
        with self.lock:
            if watermark > self.watermark:
                self.watermark = watermark
                self.dirty = True

    # -- persistence ----------------------------------------------------------

    def _manifest(self) -> Path:
        assert self.directory is not None
        return self.directory / "manifest.json"

    def save(self) -> None:
        """Write every index, then the manifest naming the watermark they reflect (atomic renames)."""
        if self.directory is None:
            return
        with self.lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            files = {}
            for tenant, index in self._tenants.items():
                path = self.directory / f"{_file_stem(tenant)}.faiss"
                tmp = path.with_suffix(".faiss.tmp")
                faiss.write_index(index.index, str(tmp))
                os.replace(tmp, path)
                files[tenant] = path.name
            manifest = {"dim": self.dim, "watermark": self.watermark, "tenants": files}
            tmp_manifest = self._manifest().with_suffix(".tmp")
            tmp_manifest.write_text(json.dumps(manifest))
            os.replace(tmp_manifest, self._manifest())
            self.dirty = False

    def load(self) -> bool:
        """Load the saved indexes; False (and empty) when there is nothing usable on disk."""
        if self.directory is None or not self._manifest().exists():
            return False
        try:
            manifest = json.loads(self._manifest().read_text())
            if manifest.get("dim") != self.dim:
                log.warning("FAISS indexes on disk have dim %s, model has %s: rebuilding", manifest.get("dim"), self.dim)
                return False
            loaded = {
                tenant: TenantIndex(self.dim, faiss.read_index(str(self.directory / name)))
                for tenant, name in manifest["tenants"].items()
            }
        except Exception as exc:  # a torn or corrupt file: rebuild from SQL instead
            log.warning("could not load FAISS indexes (%s): rebuilding from SQL", exc)
            return False
        with self.lock:
            self._tenants = loaded
            self.watermark = int(manifest["watermark"])
            self.dirty = False
        return True
