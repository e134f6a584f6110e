"""The compressor interface and the registry that selects a backend by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

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


CompressorFactory = Callable[..., Compressor]

_REGISTRY: dict[str, CompressorFactory] = {}


def register_compressor(name: str) -> Callable[[CompressorFactory], CompressorFactory]:
    def decorator(factory: CompressorFactory) -> CompressorFactory:
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_compressors() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_compressor(name: str, **options: Any) -> Compressor:
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown compressor {name!r}; available: {', '.join(available_compressors())}"
        ) from None
    return factory(**options)


def _load_builtin() -> None:
    # Importing a backend module registers it.
    from compressors import extractive  # noqa: F401
