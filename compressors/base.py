"""The compressor interface and the registry that selects a backend by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from opentelemetry import trace

from compressors.factories import resolve, spec_of
from memory_service.domain import CompressionWindow, MemoryUnitDraft


@runtime_checkable
class Compressor(Protocol):
    """Turns a window of events into memory-unit drafts.

    A draft may cite only events of `window.events` (never the overlap), and every
    event of the window that carries information should be cited by some draft.
    """

    name: str
    version: str

    def compress(self, window: CompressionWindow) -> list[MemoryUnitDraft]: ...


@dataclass
class ProducedDraft:
    """A draft and the compressor that actually wrote it (an LM backend or its extractive stand-in)."""

    draft: MemoryUnitDraft
    compressor: str
    version: str


@dataclass
class WindowResult:
    """What compressing one window produced, with the bookkeeping the pipeline records."""

    units: list[ProducedDraft]
    # Why the LM's answer was not used (invalid JSON, timeout, crash); the window's
    # units then come from `extractive` and its events are marked for a retry.
    fallback: str | None = None
    lm_units: int = 0  # units the LM proposed
    rejected: int = 0  # of those, failed grounding (replaced by extractive units)
    repaired: int = 0  # of those, fixed from the source
    lm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lm_seconds: float = 0.0
    # prompt processing and generation apart, where the backend measures them (see lm.client.Generation)
    prompt_eval_tokens: int = 0
    prompt_eval_seconds: float = 0.0
    generated_tokens: int = 0  # completion tokens of the calls whose generation_seconds is known
    generation_seconds: float = 0.0
    cached: bool = False


def compress_window(compressor: Compressor, window: CompressionWindow) -> WindowResult:
    """Run any compressor on a window; LM compressors report their details (and open their own
    `compress.window` span), others just drafts."""
    detailed = getattr(compressor, "compress_window", None)
    if callable(detailed):
        return detailed(window)  # type: ignore[no-any-return]
    with tracer.start_as_current_span("compress.window", attributes={"events": len(window.events)}):
        drafts = compressor.compress(window)
    return WindowResult([ProducedDraft(d, compressor.name, compressor.version) for d in drafts])


def compress_windows(compressor: Compressor, windows: Sequence[CompressionWindow]) -> list[WindowResult]:
    """`compress_window` for each window, in order; a compressor that can overlap windows
    (the `openai` backend with a concurrency above 1) gets them all at once."""
    batched = getattr(compressor, "compress_windows", None)
    if callable(batched):
        return list(batched(windows))
    return [compress_window(compressor, w) for w in windows]


# The OpenTelemetry API (no-op until a process configures a provider; see memory_service/tracing.py):
# every compressor's spans (`compress.window`, `compress.lm`, `compress.grounding`) come from it.
tracer = trace.get_tracer("compressors")

CompressorFactory = Callable[..., Compressor]

# Built-in backends by name: "module:factory" and whether the model runs native code
# (llama.cpp, torch; those run in a child process when isolation is asked for). Nothing
# is imported until a backend is asked for, and no backend imports this registry.
BUILTIN: dict[str, tuple[str, bool]] = {
    "extractive": ("compressors.extractive:create_extractive", False),
    "llama_cpp": ("compressors.backends.llamacpp:create_llama_cpp", True),
    "transformers": ("compressors.backends.hf:create_transformers", True),
    "openai": ("compressors.backends.openai_compat:create_openai", False),
    # references for measuring the others (compressors/reference.py), not for ingest
    "identity": ("compressors.reference:create_identity", False),
    "truncate": ("compressors.reference:create_truncation", False),
}
# A package adds a backend with an entry point in this group, name = "package.module:factory";
# like a "module:callable" name, it counts as native (runs isolated when asked).
ENTRY_POINT_GROUP = "memory_service.compressors"

_REGISTRY: dict[str, CompressorFactory] = {}
_NATIVE: set[str] = set()


def register_compressor(name: str, native: bool = False) -> Callable[[CompressorFactory], CompressorFactory]:
    """Register a factory under `name` from code (a test, an embedding application)."""

    def decorator(factory: CompressorFactory) -> CompressorFactory:
        _REGISTRY[name] = factory
        if native:
            _NATIVE.add(name)
        return factory

    return decorator


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_compressors() -> list[str]:
    return sorted({*BUILTIN, *_REGISTRY, *_entry_points()})


def _spec(name: str) -> str | None:
    """The "module:callable" a backend name loads from (None: registered from code, or unknown)."""
    if ":" in name:
        return name
    if name in _REGISTRY:
        return None
    if name in BUILTIN:
        return BUILTIN[name][0]
    return _entry_points().get(name)


def compressor_factory(name: str) -> CompressorFactory:
    """The factory registered as `name`, or the callable a "package.module:callable" name points to."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    spec = _spec(name)
    if spec is None:
        raise ValueError(
            f"unknown compressor {name!r}; available: {', '.join(available_compressors())}, or a 'module:callable'"
        )
    try:
        return resolve(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"compressor {name!r} cannot be loaded: {exc}") from None


def is_native(name: str) -> bool:
    """Whether backend `name` runs native model code (a "module:callable" or entry-point backend is taken to)."""
    if name in _REGISTRY:
        return name in _NATIVE
    if name in BUILTIN:
        return BUILTIN[name][1]
    return ":" in name or name in _entry_points()


def factory_spec(name: str) -> str:
    """The "module:callable" that builds backend `name`, for a process that has only the name."""
    return _spec(name) or spec_of(compressor_factory(name))


def create_compressor(name: str, **options: Any) -> Compressor:
    """The backend `name` built with `options`, in this process (`compressors.lm.isolated.isolate`
    builds a native one in a child process instead)."""
    return compressor_factory(name)(**options)
