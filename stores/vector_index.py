"""FAISS dense indexes: one per tenant, filtered per query by the ids SQL allows.

One index per tenant (not per user/agent scope) because SQL already resolves which
units a query may see (scope, validity time); FAISS then only scores those ids
through an `IDSelectorBatch`. `benchmarks/faiss_partitioning.py` compares this with
one index per scope at 100k units.

A tenant's index is exact (flat) until it holds `AnnConfig.threshold` vectors; then it is
rebuilt once as an inverted-file index (`IndexIVFFlat`, inner product, a hashtable direct
map so ids can be removed and vectors read back), trained on a sample of what it holds.
Later vectors go to the trained lists without retraining. An IVF search probes `nprobe`
lists, except when the allowed ids are at most `exact_scope`: then it probes every list,
which with the selector scores exactly those ids (as exact as flat, at the cost of the
selector checks). `benchmarks/ann_index.py` measures recall@50 against exact search.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)


def _file_stem(tenant: str) -> str:
    return tenant.encode().hex()


def use_gpu() -> bool:
    get = getattr(faiss, "get_num_gpus", None)
    return bool(get and get() > 0)


@dataclass(frozen=True)
class AnnConfig:
    """When and how a tenant's index becomes approximate (see the module docstring)."""

    threshold: int = 100_000  # vectors at which the flat index is rebuilt as IVF; 0 = never
    nprobe: int = 64  # lists probed per query
    exact_scope: int = 50_000  # allowed ids at or below which a query probes every list
    direct_scope: int = 20_000  # allowed ids at or below which a scope's vectors are gathered and searched exactly
    train_per_list: int = 40  # training sample: this many vectors per list (at most what is held)


def nlist_for(count: int) -> int:
    """Lists for `count` vectors: about 4 sqrt(count), a power of two in [64, 65536], but never
    under 39 vectors a list (what k-means needs to train a centroid)."""
    target = 4 * math.sqrt(max(count, 1))
    return int(max(1, min(65536, max(64, 2 ** round(math.log2(target))), count // 39)))


def flat_contents(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of an `IndexIDMap2` over a flat index."""
    inner = faiss.downcast_index(index.index)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    vectors = faiss.vector_to_array(inner.codes).view(np.float32).reshape(len(ids), inner.d)
    return ids, vectors


def build_ivf(ids: np.ndarray, vectors: np.ndarray, config: AnnConfig, seed: int = 0) -> faiss.IndexIVFFlat:
    dim = vectors.shape[1]
    nlist = nlist_for(len(ids))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = min(len(ids), nlist * config.train_per_list)
    rows = np.random.default_rng(seed).choice(len(ids), size=sample, replace=False)
    ivf.train(np.ascontiguousarray(vectors[np.sort(rows)]))
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.add_with_ids(np.ascontiguousarray(vectors), ids)
    ivf.nprobe = config.nprobe
    return ivf


class AllowedIds:
    """The ids a query scope may see, with what searching them needs built once per scope.

    Hashing 10^6 ids into an `IDSelectorBatch`, or into a Python set, costs tens of
    milliseconds: the retriever caches one `AllowedIds` per scope (until the change log
    says otherwise) and every search of that scope reuses them.
    """

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self._selector: faiss.IDSelector | None = None
        self._bitmap: np.ndarray | None = None
        self._members: frozenset[int] | None = None
        self._sorted: np.ndarray | None = None
        # The ids' vectors, sorted by id (`gather_vectors`), for an exact search without FAISS.
        self.vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def selector(self) -> faiss.IDSelector:
        """A bitmap over ids 0..max when that is no bigger than a hash set of the ids (16 bytes
        an id): 4 ms for 10^6 dense ids against 80-270 ms for an `IDSelectorBatch`, which
        matters because a patched scope (after a write) builds its selector again."""
        if self._selector is None:
            top = int(self.sorted_ids[-1]) if len(self.ids) else -1
            if 0 <= top < 128 * len(self.ids) and int(self.sorted_ids[0]) >= 0:
                mask = np.zeros(top + 1, dtype=bool)
                mask[self.sorted_ids] = True
                self._bitmap = np.packbits(mask, bitorder="little")  # kept: FAISS reads it in place
                self._selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))
            else:
                self._selector = faiss.IDSelectorBatch(self.ids)
        return self._selector

    @property
    def members(self) -> frozenset[int]:
        if self._members is None:
            self._members = frozenset(self.ids.tolist())
        return self._members

    @property
    def sorted_ids(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.unique(self.ids)
        return self._sorted

    def patched(self, removed: Sequence[int], added: Sequence[int], added_vectors: np.ndarray | None) -> AllowedIds:
        """These ids without `removed` and with `added` (a scope after a few writes), keeping the
        gathered vectors when `added_vectors` (the rows of `added`, in its order) come with them."""
        keep = np.ones(len(self.sorted_ids), dtype=bool)
        gone = np.asarray(removed, dtype=np.int64)
        keep[np.searchsorted(self.sorted_ids, gone[self.contains(gone)])] = False
        new = np.asarray(added, dtype=np.int64)
        ids = np.concatenate([self.sorted_ids[keep], new])
        order = np.argsort(ids, kind="stable")
        out = AllowedIds(ids[order])
        out._sorted = out.ids
        if self.vectors is not None and (added_vectors is not None or not len(new)):
            extra = added_vectors if added_vectors is not None else np.zeros((0, self.vectors.shape[1]), np.float32)
            out.vectors = np.ascontiguousarray(np.concatenate([self.vectors[keep], extra])[order])
        return out

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """For each of `ids`, whether it is among these (a binary search each: no set of all ids)."""
        rows = np.searchsorted(self.sorted_ids, ids)
        inside = rows < len(self.sorted_ids)
        inside[inside] = self.sorted_ids[rows[inside]] == ids[inside]
        return inside

    def rows_of(self, ids: Sequence[int]) -> np.ndarray | None:
        """Positions of `ids` in `sorted_ids`, or None when one of them is not among these ids."""
        wanted = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.sorted_ids, wanted)
        if len(rows) and (rows.max() >= len(self.sorted_ids) or not np.array_equal(self.sorted_ids[rows], wanted)):
            return None
        return rows


def exact_top_k(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The `k` best inner products of `query` with the rows of `vectors` (ids alongside), best first."""
    scores = vectors @ query
    k = min(k, len(scores))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in top]


class TenantIndex:
    """Inner product on normalised vectors (cosine): an `IndexIDMap2` over a flat index, or,
    once large, an `IndexIVFFlat` (see the module docstring)."""

    def __init__(self, dim: int, index: faiss.Index | None = None, ann: AnnConfig | None = None) -> None:
        self.dim = dim
        self.ann = ann or AnnConfig()
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if self.approximate:
            faiss.extract_index_ivf(self.index).nprobe = self.ann.nprobe

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    def make_approximate(self) -> None:
        """Rebuild the flat index as IVF (trains on a sample of what it holds)."""
        if self.approximate:
            return
        ids, vectors = flat_contents(self.index)
        self.index = build_ivf(ids, vectors, self.ann)

    def _params(self, selector: faiss.IDSelector | None, allowed: int | None) -> faiss.SearchParameters | None:
        if not self.approximate:
            return faiss.SearchParameters(sel=selector) if selector is not None else None
        ivf = faiss.extract_index_ivf(self.index)
        every_list = allowed is not None and allowed <= self.ann.exact_scope
        return faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nlist if every_list else self.ann.nprobe)

    def upsert(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        id_array = np.asarray(ids, dtype=np.int64)
        self.index.remove_ids(id_array)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), id_array)

    def remove(self, ids: Sequence[int]) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(
        self, vector: np.ndarray, k: int, allowed_ids: Sequence[int] | AllowedIds | None = None
    ) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        if allowed_ids is None:
            scores, ids = self.index.search(query, min(k, len(self)), params=self._params(None, None))
        else:
            if not len(allowed_ids):
                return []
            allowed = allowed_ids if isinstance(allowed_ids, AllowedIds) else AllowedIds(allowed_ids)
            if allowed.vectors is not None:
                return exact_top_k(allowed.vectors, allowed.sorted_ids, query[0], k)
            params = self._params(allowed.selector, len(allowed))
            scores, ids = self.index.search(query, min(k, len(allowed)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def search_within(
        self, vector: np.ndarray, k: int, ids: Sequence[int], scope: AllowedIds
    ) -> list[tuple[int, float]]:
        """`search` over `ids`, a subset of `scope`: from the scope's gathered vectors when it has
        them (no selector to build, no list to probe), else through FAISS."""
        if scope.vectors is not None and len(ids):
            rows = scope.rows_of(ids)
            if rows is not None:
                query = np.asarray(vector, dtype=np.float32).reshape(-1)
                return exact_top_k(scope.vectors[rows], scope.sorted_ids[rows], query, k)
        return self.search(vector, k, ids)

    def gather_vectors(self, allowed: AllowedIds) -> bool:
        """Give `allowed` its vectors (sorted by id) when it is small enough for an exact search
        without FAISS and the index is approximate (an IVF search of a small scope probes every
        list: 10^6 vectors checked for 10^4 allowed). False when not gathered."""
        if not self.approximate or len(allowed) > self.ann.direct_scope or not len(allowed):
            return False
        try:
            allowed.vectors = np.ascontiguousarray(self.index.reconstruct_batch(allowed.sorted_ids), dtype=np.float32)
        except (RuntimeError, AssertionError):  # an id not in the index yet: FAISS it is
            return False
        return True

    def search_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest stored vectors of each row of `vectors` over the whole tenant:
        (scores, ids), each `len(vectors) x min(k, len(self))`, best first (consolidation's
        near-duplicate candidates; the caller filters them by owner)."""
        k = min(k, len(self))
        if k <= 0 or not len(vectors):
            return np.zeros((len(vectors), 0), dtype=np.float32), np.zeros((len(vectors), 0), dtype=np.int64)
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k, params=self._params(None, None))

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

    def __init__(self, dim: int, directory: Path | None, ann: AnnConfig | None = None) -> None:
        self.dim = dim
        self.ann = ann or AnnConfig()
        self.directory = directory
        self.watermark = 0
        self.dirty = False
        self._tenants: dict[str, TenantIndex] = {}
        self.lock = threading.RLock()

    def tenant(self, tenant: str) -> TenantIndex:
        with self.lock:
            index = self._tenants.get(tenant)
            if index is None:
                index = self._tenants[tenant] = TenantIndex(self.dim, ann=self.ann)
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

    def reconstruct(self, tenant: str, ids: Sequence[int]) -> np.ndarray | None:
        """The stored vectors of `ids` (rows in their order), or None when one is not in the index."""
        with self.lock:
            try:
                return np.ascontiguousarray(
                    self.tenant(tenant).index.reconstruct_batch(np.asarray(ids, dtype=np.int64)), dtype=np.float32
                )
            except (RuntimeError, AssertionError):
                return None

    def gather_vectors(self, tenant: str, allowed: AllowedIds) -> bool:
        """`TenantIndex.gather_vectors` under the lock `apply` takes: it may run in another thread."""
        with self.lock:
            return self.tenant(tenant).gather_vectors(allowed)

    def make_approximate_where_due(self) -> list[str]:
        """Rebuild as IVF every flat tenant index at or past the threshold; the tenants rebuilt.

        Seconds per tenant (training): the caller runs it off the event loop, and no `apply`
        may run meanwhile (`IndexSync` holds its lock), as the new index replaces the old one
        only once it is built. Searches go on against the old one until then."""
        rebuilt = []
        for tenant, index in list(self._tenants.items()):
            if self.ann.threshold and not index.approximate and len(index) >= self.ann.threshold:
                started = time.perf_counter()
                index.make_approximate()
                self.dirty = True
                rebuilt.append(tenant)
                log.info("tenant %r: %d vectors, index rebuilt as IVF in %.1f s", tenant, len(index), time.perf_counter() - started)
        return rebuilt

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
                tenant: TenantIndex(self.dim, faiss.read_index(str(self.directory / name)), self.ann)
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
