"""`memory-service doctor`: check that each part the configuration needs is there and works.

One `Check` per part. `required` checks that fail make the command exit 1; GPU lines are
informative only (CPU is a supported configuration). Nothing here writes to the database
or applies migrations; the FAISS check writes and removes one probe file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from memory_service.settings import Settings

Status = Literal["ok", "warn", "fail", "info"]
TIMEOUT_S = 10.0
LM_TIMEOUT_S = 180.0  # loading a model and one short answer


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.status == "fail" and self.required


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _missing_sqlite_file(url: str, shown: str) -> Check | None:
    """A SQLite file that does not exist yet: fine if it can be created (connecting would create it)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1]
    if not path or path == ":memory:" or Path(path).exists():
        return None
    parent = Path(path).parent
    writable = os.access(parent if parent.exists() else parent.parent, os.W_OK)
    if writable:
        return Check("database", "warn", f"{shown}: no database file yet (created and migrated on first start)")
    return Check("database", "fail", f"{shown}: no database file and {parent} is not writable")


async def check_database(settings: Settings) -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from stores.sql.engine import alembic_config, create_engine

    url = settings.sql_url
    shown = safe_url(url)
    missing = _missing_sqlite_file(url, shown)
    if missing is not None:
        return missing
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    except Exception as exc:
        return Check("database", "fail", f"{shown}: cannot connect ({_short(exc)})")
    finally:
        await engine.dispose()
    if current == head:
        return Check("database", "ok", f"{shown} reachable, migrations at head ({head})")
    if current is None:
        return Check("database", "warn", f"{shown} reachable, no schema yet (applied on start, or `memory-service migrate`)")
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current in known:
        return Check("database", "warn", f"{shown} reachable, at {current}, head is {head} (applied on start, or `memory-service migrate`)")
    return Check("database", "fail", f"{shown} is at revision {current}, unknown to this version (newer code wrote it?)")


REBUILD_COMMAND = "memory-service consolidate --rebuild-statements"


async def check_statement_keys(settings: Settings) -> Check:
    """Whether the statement keys consolidation finds old units by were derived by this version's
    rules (`statements.STATEMENT_KEYS_VERSION`); run once the database is at head."""
    from memory_service.consolidate.statements import STATEMENT_KEYS_VERSION
    from stores.sql.engine import create_engine
    from stores.sql.statement_keys import StatementKeyTable
    from stores.sql.store import SqlStore

    store = SqlStore(create_engine(settings.sql_url))  # not `open`: the doctor migrates nothing
    try:
        stale = await StatementKeyTable(store).stale_tenants(STATEMENT_KEYS_VERSION)
    except Exception as exc:
        return Check("statements", "fail", f"cannot read statement key versions ({_short(exc)})", required=False)
    finally:
        await store.close()
    if not stale:
        return Check("statements", "ok", f"statement keys at derivation version {STATEMENT_KEYS_VERSION}", required=False)
    names = ", ".join(list(stale)[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    fix = f"{REBUILD_COMMAND} --tenant {next(iter(stale))}" if len(stale) == 1 else f"{REBUILD_COMMAND} --all-tenants"
    return Check(
        "statements", "warn",
        f"statement keys of {len(stale)} tenant(s) ({names}) were derived by version {min(stale.values())}, "
        f"this code's is {STATEMENT_KEYS_VERSION}: updates cannot find their older memories; run `{fix}`",
        required=False,
    )


async def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", "ok", "not configured: jobs run in process (embedded mode)", required=False)
    from redis.asyncio import Redis

    shown = safe_url(settings.redis_url) if "@" in settings.redis_url else settings.redis_url
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
        version = (await client.info("server")).get("redis_version", "?")
    except Exception as exc:
        return Check("redis", "fail", f"{shown}: cannot reach it ({_short(exc)})")
    finally:
        await client.aclose()
    return Check("redis", "ok", f"{shown} reachable (Redis {version}), queue {settings.queue_name!r}")


def check_faiss(settings: Settings, dim: int | None) -> Check:
    import faiss

    from stores.vector_index import VectorIndexes

    directory = settings.index_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".doctor-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("faiss", "fail", f"faiss {faiss.__version__}: index dir {directory} not writable ({_short(exc)})")
    manifest = directory / "manifest.json"
    if not manifest.exists():
        return Check("faiss", "ok", f"faiss {faiss.__version__}: {directory} writable, no saved indexes yet")
    try:
        saved_dim = int(json.loads(manifest.read_text())["dim"])
    except Exception as exc:
        return Check("faiss", "warn", f"{manifest} unreadable ({_short(exc)}): indexes are rebuilt from SQL on start")
    indexes = VectorIndexes(saved_dim, directory)
    if not indexes.load():
        return Check("faiss", "warn", f"saved indexes in {directory} do not load: they are rebuilt from SQL on start")
    vectors = sum(len(indexes.tenant(t)) for t in indexes.tenants())
    detail = f"faiss {faiss.__version__}: {len(indexes.tenants())} tenant index(es), {vectors} vectors, watermark {indexes.watermark}"
    if dim is not None and saved_dim != dim:
        return Check("faiss", "warn", f"{detail}; saved dim {saved_dim} != model dim {dim}: rebuilt on start")
    return Check("faiss", "ok", detail)


def check_gpu() -> Check:
    parts = []
    try:
        import torch

        if torch.cuda.is_available():
            parts.append(f"torch CUDA: {torch.cuda.device_count()} device(s), {torch.cuda.get_device_name(0)}")
        else:
            parts.append(f"torch {torch.__version__}: no CUDA device")
    except Exception as exc:
        parts.append(f"torch: {_short(exc)}")
    try:
        import faiss

        parts.append(f"faiss GPUs: {faiss.get_num_gpus()}")
    except Exception as exc:
        parts.append(f"faiss: {_short(exc)}")
    if importlib.util.find_spec("llama_cpp") is not None:
        try:
            import llama_cpp

            parts.append(f"llama.cpp GPU offload: {'yes' if llama_cpp.llama_supports_gpu_offload() else 'no'}")
        except Exception as exc:
            parts.append(f"llama.cpp: {_short(exc)}")
    return Check("gpu", "info", "; ".join(parts) + " (informative: CPU works)", required=False)


def check_embedding(settings: Settings) -> tuple[Check, int | None]:
    from memory_service.index.embedding import SentenceTransformerEmbedder

    try:
        embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embedding_device)
        vectors = embedder.embed(["memory-service doctor checks the embedding model"])
    except Exception as exc:
        return Check("embedding", "fail", f"model {settings.embedding_model or '(packaged all-MiniLM-L6-v2)'} does not load ({_short(exc)})"), None
    name = settings.embedding_model or "packaged all-MiniLM-L6-v2"
    if vectors.shape != (1, embedder.dim):
        return Check("embedding", "fail", f"{name}: vector shape {vectors.shape}, expected (1, {embedder.dim})"), None
    return Check("embedding", "ok", f"{name} loads, dim {embedder.dim}"), embedder.dim


def check_compressor(settings: Settings) -> Check:
    from compressors.lm.models import ModelNotFound, gguf_path

    name = settings.compressor
    if name == "extractive":
        return Check("compressor", "ok", "extractive (no LM needed)")
    if name == "llama_cpp":
        if importlib.util.find_spec("llama_cpp") is None:
            return Check("compressor", "fail", "llama_cpp configured but llama-cpp-python is not installed (pip install '.[lm]')")
        try:
            path = gguf_path(settings.llm_model)
        except ModelNotFound as exc:
            return Check("compressor", "fail", f"llama_cpp: {exc}")
        return Check("compressor", "ok", f"llama_cpp: model file {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    if name == "transformers":
        model = settings.llm_model
        if not model:
            try:
                model = str(gguf_path(None))
            except ModelNotFound as exc:
                return Check("compressor", "fail", f"transformers: {exc}")
        if Path(model).expanduser().exists():
            return Check("compressor", "ok", f"transformers: model {model} present")
        return Check("compressor", "warn", f"transformers: {model} is not a local path (a hub id needs the hub cache or network)")
    if ":" in name:
        from compressors.base import compressor_factory

        try:
            factory = compressor_factory(name)
        except ValueError as exc:
            return Check("compressor", "fail", str(exc))
        return Check("compressor", "ok", f"backend {name} ({factory.__doc__ or 'no description'})".splitlines()[0][:200])
    if name == "openai":
        if not settings.llm_base_url:
            return Check("compressor", "fail", "openai configured without MEMORY_SERVICE_LLM_BASE_URL")
        return Check("compressor", "ok", f"openai-compatible endpoint {settings.llm_base_url} (not called)")
    return Check("compressor", "fail", f"unknown compressor {name!r}")


class LMProbe:
    """Runs in an LM child process (`compressors.lm.process`): a native fault here is reported,
    not suffered, by the doctor."""

    def system_info(self) -> str:
        import llama_cpp

        return f"llama-cpp-python {llama_cpp.__version__}: {llama_cpp.llama_print_system_info().decode().strip()}"

    def generate(self, compressor: str, options: dict[str, object]) -> object:
        from compressors.base import create_compressor

        lm = create_compressor(compressor, **options)
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        return lm.ask_json([{"role": "user", "content": 'Answer with the JSON {"ok": true}.'}], schema)  # type: ignore[attr-defined]

    def score(self, model: str | None, threads: int | None) -> int:
        from compressors.lm.scoring import LlamaCppScorer

        scorer = LlamaCppScorer(model, context_tokens=256, threads=threads)
        prompt = scorer.prompt_tokens("Ann adopted a cat.")
        (logprobs,) = scorer.continuation_token_logprobs(prompt, [scorer.text_tokens(" Ann has a cat.")])
        return len(logprobs)


def lm_checks(settings: Settings) -> list[Check]:
    """llama.cpp's build (informative), and a tiny generation / scoring pass for each native LM
    the configuration uses, all in a child process: a broken native build fails here."""
    from compressors.base import is_native

    pruning = settings.context_config().pruning  # a recipe can turn pruning on
    wants_generation = is_native(settings.compressor)
    wants_scoring = pruning.enabled
    has_llama = importlib.util.find_spec("llama_cpp") is not None
    if not (has_llama or wants_generation or wants_scoring):
        return []
    checks = []
    if has_llama:
        try:
            checks.append(Check("llama.cpp", "info", _probe("system_info"), required=False))
        except Exception as exc:
            checks.append(Check("llama.cpp", "fail", f"system info: {_short(exc)}", required=wants_generation or wants_scoring))
    if wants_generation:
        started = time.perf_counter()
        try:
            answer = _probe("generate", settings.compressor, settings.compressor_options())
            checks.append(Check("lm", "ok", f"{settings.compressor}: a tiny generation in a child process answered "
                                            f"{json.dumps(answer)[:80]} in {time.perf_counter() - started:.1f} s"))
        except Exception as exc:
            checks.append(Check("lm", "fail", f"{settings.compressor}: a tiny generation in a child process failed ({_short(exc)})"))
    if wants_scoring:
        from memory_service.service import pruning_model

        try:
            tokens = _probe("score", pruning_model(settings, pruning), settings.llm_threads)
            checks.append(Check("pruning", "ok", f"token scoring in a child process works ({tokens} tokens scored)"))
        except Exception as exc:
            checks.append(Check("pruning", "fail", f"token scoring in a child process failed ({_short(exc)})"))
    return checks


def _probe(method: str, *args: object) -> Any:
    """`LMProbe().method(*args)` in a child process of its own (one probe's crash spoils no other)."""
    from compressors.lm.process import LMProcess

    process = LMProcess("memory_service.doctor:LMProbe", label="doctor", call_timeout_s=LM_TIMEOUT_S)
    try:
        return process.call(method, args)
    finally:
        process.close()


def check_tokenizer(settings: Settings) -> Check:
    from memory_service.tokens import count_tokens

    try:
        tokens = count_tokens("The quick brown fox jumps over the lazy dog.", settings.tokenizer)
    except Exception as exc:
        return Check("tokenizer", "fail", f"{settings.tokenizer} does not load offline ({_short(exc)})")
    if tokens <= 0:
        return Check("tokenizer", "fail", f"{settings.tokenizer} counted {tokens} tokens for a sentence")
    return Check("tokenizer", "ok", f"{settings.tokenizer} counts offline (10-word sentence = {tokens} tokens)")


async def _timed(name: str, check: Callable[[], Awaitable[Check]]) -> Check:
    try:
        return await asyncio.wait_for(check(), TIMEOUT_S)
    except TimeoutError:
        return Check(name, "fail", f"no answer within {TIMEOUT_S:.0f} s")


async def run_checks(settings: Settings) -> list[Check]:
    checks = [await _timed("database", lambda: check_database(settings))]
    if checks[0].status == "ok":  # at head: the version table is there
        checks.append(await _timed("statements", lambda: check_statement_keys(settings)))
    checks.append(await _timed("redis", lambda: check_redis(settings)))
    embedding, dim = await asyncio.to_thread(check_embedding, settings)
    checks.append(await asyncio.to_thread(check_faiss, settings, dim))
    checks.append(await asyncio.to_thread(check_gpu))
    checks.append(embedding)
    checks.append(await asyncio.to_thread(check_compressor, settings))
    checks.append(await asyncio.to_thread(check_tokenizer, settings))
    checks.extend(await asyncio.to_thread(lm_checks, settings))
    return checks


def as_json(checks: list[Check]) -> str:
    return json.dumps({"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]})
