"""`MemoryServiceStore`: a LangGraph `BaseStore` backed by the memory service.

Each item is one raw event of the service, so a `put` goes through the service's own
pipeline (compressed into memory units, embedded, indexed) and `search(query=...)` ranks
items by the service's query-aware retrieval.

Mapping (see docs/architecture.md, "LangGraph store"):

- namespace -> scope: the leading labels fill the scope fields named in `namespace_scope`
  (default `("agent_id", "user_id", "session_id")`, so `("memories", "ann")` is agent
  `memories`, user `ann`); labels past those only narrow the namespace.
- (namespace, key) -> event_id `lg/<label>/<label>/#<key>` (each part percent-encoded), so
  a namespace prefix is an event-id prefix. The value, key, namespace and created_at ride in
  the event's metadata; the event content is the value's text (`index` fields, when given).
- put of an existing key erases the old event (and its units) and ingests the new one;
  delete erases. Every item is indexed: `index=False` is accepted and ignored.
- search without a query lists the prefix's items (oldest first) and filters them here;
  with a query it asks `/v1/context` in the prefix's scope and keeps the items whose
  units came back, scored by their best unit, best first. Only relevant items come back,
  so a query search can return fewer than `limit`.

The store logic is written once as generators that yield client `Call`s; `batch` sends them
with a `MemoryClient`, `abatch` with an `AsyncMemoryClient`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)
from langgraph.store.base.embed import get_text_at_path

from memory_service.client import AsyncMemoryClient, Call, Calls, MemoryClient, MemoryServiceError, NotFound
from memory_service.domain import Event, EventIn, Role

R = TypeVar("R")
Step = Generator[Call[Any], Any, R]
ScopeField = Literal["user_id", "agent_id", "session_id"]

META = "langgraph_store"
MAX_EVENT_ID = 256
PAGE = 1000
INGEST_CHUNK = 500


class MemoryServiceStore(BaseStore):
    supports_ttl = False

    def __init__(
        self,
        client: MemoryClient | None = None,
        async_client: AsyncMemoryClient | None = None,
        *,
        namespace_scope: Sequence[ScopeField] = ("agent_id", "user_id", "session_id"),
        key_prefix: str = "lg",
        role: Role = "observation",
        wait: bool = True,
        search_budget_tokens: int = 4096,
    ) -> None:
        """`wait`: a put returns once its item is searchable (otherwise compression runs in the
        background). `search_budget_tokens`: the context budget a query search ranks within."""
        if client is None and async_client is None:
            raise ValueError("MemoryServiceStore needs a MemoryClient, an AsyncMemoryClient or both")
        fields = tuple(namespace_scope)
        if not fields or fields[0] not in ("user_id", "agent_id") or len(set(fields)) != len(fields):
            raise ValueError("namespace_scope: distinct scope fields, the first one user_id or agent_id")
        if not key_prefix or "/" in key_prefix:
            raise ValueError("key_prefix: a non-empty string without '/'")
        self.client = client
        self.async_client = async_client
        self.namespace_scope: tuple[ScopeField, ...] = fields
        self.key_prefix = key_prefix
        self.role = role
        self.wait = wait
        self.search_budget_tokens = search_budget_tokens

    @classmethod
    def connect(cls, base_url: str | None = None, *, api_key: str | None = None, **kwargs: Any) -> MemoryServiceStore:
        """A store over a running server, with both a sync and an async client."""
        return cls(MemoryClient(base_url, api_key=api_key), AsyncMemoryClient(base_url, api_key=api_key), **kwargs)

    # -- BaseStore ----------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        if self.client is None:
            raise RuntimeError("MemoryServiceStore.batch needs a MemoryClient (only an AsyncMemoryClient was given)")
        return _drive(self._batch(list(ops)), self.client)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        if self.async_client is None:
            return await asyncio.to_thread(self.batch, list(ops))
        return await _adrive(self._batch(list(ops)), self.async_client)

    # -- the logic, as generators of calls ---------------------------------------

    def _batch(self, ops: list[Op]) -> Step[list[Result]]:
        for op in ops:
            validate_op_namespace(op)
            if isinstance(op, PutOp) and (not op.namespace or op.namespace[0] == "langgraph"):
                raise InvalidNamespaceError(f"invalid namespace for put: {op.namespace}")
        results: list[Result] = [None] * len(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        # Reads see the store as it was before the batch; its puts apply last, the last one per key wins.
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = yield from self._get(op.namespace, op.key)
            elif isinstance(op, SearchOp):
                results[i] = yield from self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._list_namespaces(op)
            elif isinstance(op, PutOp):
                puts[(tuple(op.namespace), op.key)] = op
            else:
                raise ValueError(f"unknown operation: {type(op).__name__}")
        if puts:
            yield from self._put_all(list(puts.values()))
        return results

    def _get(self, namespace: tuple[str, ...], key: str) -> Step[Item | None]:
        try:
            event = yield Calls.get_event(self.event_id(namespace, key))
        except NotFound:
            return None
        return self._item(event)

    def _put_all(self, ops: list[PutOp]) -> Step[None]:
        new: list[EventIn] = []
        for op in ops:
            event_id = self.event_id(op.namespace, op.key)
            created_at: str | None = None
            try:
                old = yield Calls.get_event(event_id)
                created_at = (old.metadata.get(META) or {}).get("created_at")
                yield Calls.delete_event(event_id)
            except NotFound:
                pass
            if op.value is not None:
                new.append(self._event(op, event_id, created_at))
        for start in range(0, len(new), INGEST_CHUNK):
            yield Calls.ingest(new[start : start + INGEST_CHUNK], wait=self.wait)

    def _search(self, op: SearchOp) -> Step[list[SearchItem]]:
        prefix = self.id_prefix(op.namespace_prefix)
        scope = self.scope(op.namespace_prefix)
        if not op.query:
            items = []
            for event in (yield from self._events(scope, prefix)):
                item = self._item(event)
                if item is not None and matches(item.value, op.filter):
                    items.append(item)
            return [_scored(item, None) for item in items[op.offset : op.offset + op.limit]]
        if not scope:
            raise ValueError("a search with a query needs a namespace prefix of at least one label (the scope owner)")
        answer = yield Calls.context(op.query, budget_tokens=self.search_budget_tokens, **scope)
        best: dict[str, float] = {}
        for unit in answer.units:
            for event_id in unit.source_event_ids:
                if event_id.startswith(prefix) and unit.score > best.get(event_id, float("-inf")):
                    best[event_id] = unit.score
        found: list[SearchItem] = []
        skipped = 0
        for event_id, score in sorted(best.items(), key=lambda kv: -kv[1]):
            if len(found) >= op.limit:
                break
            try:
                event = yield Calls.get_event(event_id)
            except NotFound:  # erased since the search
                continue
            item = self._item(event)
            if item is None or not matches(item.value, op.filter):
                continue
            if skipped < op.offset:
                skipped += 1
                continue
            found.append(_scored(item, score))
        return found

    def _list_namespaces(self, op: ListNamespacesOp) -> Step[list[tuple[str, ...]]]:
        conditions = op.match_conditions or ()
        literal: list[str] = []
        for condition in conditions:
            if condition.match_type == "prefix":
                for label in condition.path:
                    if label == "*":
                        break
                    literal.append(label)
                break
        found: set[tuple[str, ...]] = set()
        for event in (yield from self._events(self.scope(literal), self.id_prefix(literal))):
            item = self._item(event)
            if item is not None and all(_namespace_matches(c, item.namespace) for c in conditions):
                found.add(item.namespace if op.max_depth is None else item.namespace[: op.max_depth])
        return sorted(found)[op.offset : op.offset + op.limit]

    def _events(self, scope: Mapping[str, str], prefix: str) -> Step[list[Event]]:
        events: list[Event] = []
        offset: int | None = 0
        while offset is not None:
            page = yield Calls.list_events(**scope, limit=PAGE, offset=offset, event_id_prefix=prefix)
            events.extend(page.events)
            offset = page.next_offset
        return events

    # -- mapping --------------------------------------------------------------------

    def scope(self, labels: Sequence[str]) -> dict[str, str]:
        """The scope fields a namespace (or prefix) fixes."""
        return dict(zip(self.namespace_scope, labels, strict=False))

    def id_prefix(self, labels: Sequence[str]) -> str:
        return f"{self.key_prefix}/" + "".join(quote(label, safe="") + "/" for label in labels)

    def event_id(self, namespace: Sequence[str], key: str) -> str:
        event_id = self.id_prefix(namespace) + "#" + quote(key, safe="")
        if len(event_id) > MAX_EVENT_ID:
            raise ValueError(f"namespace and key too long: the event id would have {len(event_id)} > {MAX_EVENT_ID} characters")
        return event_id

    def _event(self, op: PutOp, event_id: str, created_at: str | None) -> EventIn:
        now = datetime.now(UTC)
        value = dict(op.value or {})
        scope = self.scope(op.namespace)
        return EventIn(
            event_id=event_id,
            role=self.role,
            content=item_text(value, op.index if isinstance(op.index, list) else None) or op.key,
            timestamp=now,
            metadata={
                META: {
                    "namespace": list(op.namespace),
                    "key": op.key,
                    "value": value,
                    "created_at": created_at or now.isoformat(),
                }
            },
            **scope,
        )

    def _item(self, event: Event) -> Item | None:
        meta = event.metadata.get(META)
        if not isinstance(meta, dict):
            return None
        return Item(
            value=meta["value"],
            key=meta["key"],
            namespace=tuple(meta["namespace"]),
            created_at=datetime.fromisoformat(meta["created_at"]),
            updated_at=event.timestamp,
        )


def item_text(value: Mapping[str, Any], fields: list[str] | None = None) -> str:
    """What the service compresses and indexes for an item.

    With `fields` (LangGraph's `index=[...]` paths), the text at those paths. Otherwise a
    single leaf is taken as it is (`{"content": "Ann likes tea"}` -> `Ann likes tea`) and
    several become `path: value` pairs.
    """
    if fields:
        return "\n".join(t for path in fields for t in get_text_at_path(value, path) if t)
    leaves = list(_leaves(value, ""))
    if len(leaves) == 1:
        return leaves[0][1]
    return "; ".join(f"{path}: {text}" for path, text in leaves)


def _leaves(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    elif isinstance(value, str):
        if value.strip():
            yield path, value
    elif value is not None:
        yield path, json.dumps(value)


def matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """LangGraph's filter semantics: exact (nested) equality or `$eq/$ne/$gt/$gte/$lt/$lte`."""
    return not filter or all(_compare(value.get(k), f) for k, f in filter.items())


def _compare(value: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(str(k).startswith("$") for k in expected):
            return all(_operator(value, op, operand) for op, operand in expected.items())
        return isinstance(value, Mapping) and all(_compare(value.get(k), v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(expected)
            and all(_compare(v, e) for v, e in zip(value, expected, strict=True))
        )
    return bool(value == expected)


def _operator(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    if value is None:
        return False
    try:
        left, right = float(value), float(operand)
    except (TypeError, ValueError):
        return False
    if op == "$gt":
        return left > right
    if op == "$gte":
        return left >= right
    if op == "$lt":
        return left < right
    if op == "$lte":
        return left <= right
    raise ValueError(f"unsupported filter operator: {op}")


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"unsupported match type: {condition.match_type}")
    return all(p == "*" or n == p for n, p in pairs)


def _scored(item: Item, score: float | None) -> SearchItem:
    return SearchItem(
        namespace=item.namespace,
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
        score=score,
    )


def _drive(step: Step[R], client: MemoryClient) -> R:
    try:
        call = next(step)
        while True:
            try:
                result = client.send(call)
            except MemoryServiceError as exc:
                call = step.throw(exc)
            else:
                call = step.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _adrive(step: Step[R], client: AsyncMemoryClient) -> R:
    try:
        call = next(step)
        while True:
            try:
                result = await client.send(call)
            except MemoryServiceError as exc:
                call = step.throw(exc)
            else:
                call = step.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
