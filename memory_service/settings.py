from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration, read from `MEMORY_SERVICE_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MEMORY_SERVICE_", extra="ignore")

    data_dir: Path = Field(default=Path(".memory-service"), description="Where the embedded SQLite file and FAISS indexes live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; default sqlite+aiosqlite under data_dir.")
    redis_url: str | None = Field(default=None, description="Redis for the job queue; unset = in-process jobs.")
    host: str = "127.0.0.1"
    port: int = 8080

    embedding_model: str | None = Field(default=None, description="sentence-transformers name or path; default the packaged all-MiniLM-L6-v2.")
    embedding_device: str | None = None
    compressor: str = "extractive"
    tokenizer: str = Field(default="cl100k_base", description="Predictor tokenizer used to count budget tokens.")

    window_size: int = Field(default=8, ge=1, description="Events per compression window.")
    window_overlap: int = Field(default=2, ge=0, description="Events of overlap shown before each window.")

    max_event_bytes: int = Field(default=64 * 1024, ge=1, description="Largest accepted event content (UTF-8 bytes).")
    max_batch_events: int = Field(default=1000, ge=1, description="Most events in one ingest request.")

    default_budget_tokens: int = 512
    candidates: int = Field(default=50, ge=1, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")
    min_relevance: float = Field(default=0.25, description="Cosine below which a unit no query word matches is not returned.")
    index_save_seconds: float = Field(default=30.0, description="How often a changed FAISS index is written to disk.")

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
