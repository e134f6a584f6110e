from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from compressors.lm.models import DEFAULT_CONTEXT_TOKENS, DEFAULT_SEQUENCES
from memory_service.context.config import RECIPES, ContextConfig, recipe

# Settings that are part of the context path: field -> (part of ContextConfig, its field);
# a part of None is a field of ContextConfig itself.
CONTEXT_FIELDS: dict[str, tuple[str | None, str]] = {
    "default_budget_tokens": (None, "default_budget_tokens"),
    "tokenizer": (None, "tokenizer"),
    "candidates": ("retrieval", "candidates"),
    "min_relevance": ("retrieval", "min_relevance"),
    "decay_half_life_days": ("retrieval", "decay_half_life_days"),
    "importance_weight": ("retrieval", "importance_weight"),
    "ranker": ("retrieval", "ranker"),
    "query_analysis": ("analysis", "mode"),
    "query_analysis_timeout_s": ("analysis", "timeout_s"),
    "empty_threshold": ("abstention", "empty_threshold"),
    "prune_tokens": ("pruning", "enabled"),
    "prune_keep_ratio": ("pruning", "keep_ratio"),
    "prune_top": ("pruning", "top"),
    "prune_condition_on_query": ("pruning", "condition_on_query"),
    "prune_model": ("pruning", "model"),
}


class Settings(BaseSettings):
    """Configuration, read from `MEMORY_SERVICE_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MEMORY_SERVICE_", extra="ignore")

    data_dir: Path = Field(default=Path(".memory-service"), description="Where the embedded SQLite file and FAISS indexes live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; default sqlite+aiosqlite under data_dir.")
    redis_url: str | None = Field(default=None, description="Redis for the job queue; unset = in-process jobs.")
    host: str = "127.0.0.1"
    port: int = 8080
    # Auth (memory_service/auth.py). With no key ever created, a loopback-bound service serves
    # the one `local` tenant without keys; any other bind address needs keys.
    require_api_keys: bool = Field(default=False, description="Refuse keyless requests even on 127.0.0.1 with no keys created.")
    api_key_cache_seconds: float = Field(default=2.0, ge=0, description="How long a key lookup is cached (the longest a revoked key keeps working).")
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Requests per minute per API key unless the key sets its own; 0 = unlimited. Keyless local requests are not limited.")
    log_format: Literal["text", "json"] = Field(default="text", description="text, or json: one object per line with request_id and tenant.")
    log_level: str = Field(default="INFO", description="Root log level (DEBUG, INFO, WARNING, ...).")
    tracing: Literal["off", "console", "otlp"] = Field(default="off", description="OpenTelemetry spans per stage: off, console (JSON lines on stderr), or otlp (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT).")

    embedding_model: str | None = Field(default=None, description="sentence-transformers name or path; default the packaged all-MiniLM-L6-v2.")
    embedding_device: str | None = None
    compressor: str = Field(default="extractive", description="extractive | llama_cpp | transformers | openai.")
    # LM compressors (and the `mi` proxy model). Unset model: the packaged SmolLM2-135M GGUF.
    llm_model: str | None = Field(default=None, description="GGUF path (llama_cpp), HF path/hub id/.gguf (transformers), or served model name (openai).")
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (openai).")
    llm_api_key: str | None = Field(default=None, description="Bearer token for llm_base_url.")
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Longest one window's LM call(s) may take before it falls back to extractive.")
    llm_max_tokens: int = Field(default=1024, ge=64, description="Most tokens the LM may write for one window.")
    llm_concurrency: int = Field(default=1, ge=1, le=64, description="openai: windows sent at once (servers such as vLLM batch them); each one's wait counts against llm_timeout_s.")
    llm_sequences: int = Field(default=DEFAULT_SEQUENCES, ge=1, le=64, description="llama_cpp: windows generated together, one decode per step for all (each adds llm_context_tokens KV cells).")
    llm_context_tokens: int = Field(default=DEFAULT_CONTEXT_TOKENS, ge=512, description="Context size the model is loaded with (llama_cpp, transformers).")
    llm_threads: int | None = Field(default=None, ge=1, description="CPU threads for the LM; unset = the library's default.")
    llm_device: str | None = Field(default=None, description="torch device for transformers; unset = cuda if available, else cpu.")
    lm_isolation: Literal["process", "inline"] = Field(
        default="process",
        description="process: native LM code (llama_cpp, transformers, pruning's scorer) runs in a child process, so a crash "
        "costs one window (it goes extractive, marked for retry) and the child restarts; inline: in this process.",
    )
    lm_restart_backoff_s: float = Field(default=1.0, gt=0, description="Wait before restarting a crashed LM process; doubles per consecutive failure, up to 60 s.")
    compression_cache: bool = Field(default=True, description="Reuse an LM compressor's result for a window already compressed.")
    tokenizer: str = Field(default="cl100k_base", description="Predictor tokenizer used to count budget tokens.")

    window_size: int = Field(default=8, ge=1, description="Events per compression window.")
    window_overlap: int = Field(default=0, ge=0, description="Earlier events shown before each window for reference (never cited). 0: with SmolLM2 they cost 17% of the prompt and helped nothing; a larger LM may use 2.")

    max_event_bytes: int = Field(default=64 * 1024, ge=1, description="Largest accepted event content (UTF-8 bytes).")
    max_batch_events: int = Field(default=1000, ge=1, description="Most events in one ingest request.")

    context_recipe: str = Field(default="default", description=f"Named context configuration: {', '.join(RECIPES)}; context settings given explicitly override it.")
    default_budget_tokens: int = 512
    candidates: int = Field(default=50, ge=1, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Unused (retrieval fuses normalised scores linearly); kept so old configs load.")
    min_relevance: float = Field(default=0.25, description="Cosine below which a unit no query word matches is not returned.")
    ranker: str | None = Field(
        default=None,
        description='Learned fusion of the retrieval signals: "default" = the packaged model (benchmarks/train_ranker.py), '
        'a path to a model file, unset or "none" = the hand-set weights.',
    )
    empty_threshold: float = Field(
        default=0.30,
        description="Best query-unit cosine below which the context is empty (selective augmentation); "
        "0.30 from both dev splits (benchmarks/abstention_features.py): at 0.35 BEAM's answerable questions came back empty 2.1% of the time, at 0.30 1.1%, with LoCoMo unchanged.",
    )
    index_save_seconds: float = Field(default=30.0, description="How often a changed FAISS index is written to disk.")
    ann_threshold: int = Field(default=100_000, ge=0, description="Vectors at which a tenant's exact FAISS index is rebuilt as an approximate (IVF) one; 0 = always exact.")
    ann_nprobe: int = Field(default=64, ge=1, description="IVF lists probed per query once a tenant's index is approximate.")
    ann_exact_scope: int = Field(default=50_000, ge=0, description="A query allowed at most this many ids probes every IVF list (exact over those ids).")

    queue_name: str = Field(default="memory-service", description="Redis key prefix of the job queue.")
    job_timeout_s: int = Field(default=600, ge=1, description="Longest a worker job may run before it is retried.")
    job_heartbeat_s: int = Field(default=15, ge=1, description="A running job silent this long is taken as dead and re-queued.")
    job_retries: int = Field(default=5, ge=1, description="Attempts before a job goes to the dead-letter list.")
    reconcile_seconds: float = Field(default=10.0, gt=0, description="How often a worker, or the embedded job runner, re-enqueues work SQL says is outstanding.")
    duplicate_threshold: float = Field(default=0.9, description="Cosine at or above which compatible units are merged.")
    supersede_threshold: float = Field(default=0.45, description="Cosine a newer unit needs to be considered as updating an older one.")
    decay_half_life_days: float = Field(default=30.0, gt=0, description="Unused this long, a unit's recency factor halves (ranking only; nothing is deleted).")
    importance_weight: float = Field(default=0.2, ge=0, le=1, description="How far decayed importance moves a retrieval score (+/- half of it).")
    supersession_judge: Literal["auto", "heuristic", "lm"] = Field(default="auto", description="auto: the LM when the compressor is one, else the heuristic.")
    query_analysis: Literal["auto", "rules", "lm"] = Field(default="auto", description="rules; lm: the LM compressor adds grounded terms/entities/multi-hop to the rules' analysis; auto = rules (an LM call costs seconds).")
    query_analysis_timeout_s: float = Field(default=10.0, gt=0, description="Longest one LM query analysis may take before the rules' analysis is used alone.")
    prune_tokens: bool = Field(default=False, description="Drop low-surprisal words inside the best candidates (local GGUF LM, LLMLingua style) so more units fit the budget.")
    prune_keep_ratio: float = Field(default=0.7, gt=0, le=1, description="Share of a unit's words pruning keeps (numbers, names, dates, negations and query words are always kept).")
    prune_top: int = Field(default=40, ge=1, description="How many of the best candidates are pruned per query (each new unit costs an LM pass once).")
    prune_condition_on_query: bool = Field(default=False, description="Score surprisal with the query as prefix (LongLLMLingua); costs an LM pass per unit per new query.")
    prune_model: str | None = Field(default=None, description="GGUF for pruning; unset = llm_model with the llama_cpp compressor, else the packaged SmolLM2.")
    abstraction_min_cluster: int = Field(default=4, ge=2, description="Units about one subject in one month that get a summary unit.")

    def compressor_options(self) -> dict[str, object]:
        """Keyword options for `compressors.create_compressor` (each backend takes what it needs)."""
        return {
            "model": self.llm_model,
            "base_url": self.llm_base_url,
            "api_key": self.llm_api_key,
            "timeout_s": self.llm_timeout_s,
            "max_tokens": self.llm_max_tokens,
            "concurrency": self.llm_concurrency,
            "sequences": self.llm_sequences,
            "context_tokens": self.llm_context_tokens,
            "threads": self.llm_threads,
            "device": self.llm_device,
        }

    def context_config(self) -> ContextConfig:
        """The context path's configuration: the recipe, with every context setting given
        explicitly (argument or environment) on top. The default recipe's values are these
        settings' defaults, so with no recipe named this is exactly the settings."""
        config = recipe(self.context_recipe)
        top: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {}
        for name, (part, key) in CONTEXT_FIELDS.items():
            if name not in self.model_fields_set:
                continue
            if part is None:
                top[key] = getattr(self, name)
            else:
                parts.setdefault(part, {})[key] = getattr(self, name)
        for part, values in parts.items():
            top[part] = replace(getattr(config, part), **values)
        return replace(config, **top) if top else config

    @cached_property
    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'memory.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "faiss"

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: jobs run inside the API process."""
        return not self.redis_url
