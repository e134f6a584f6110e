"""Backends and model hosts named by an importable "package.module:callable" string.

A name, not an object, because a child process (`compressors.lm.process`) must build
the same thing from the name alone; no project imports here, so both the registry and
the child can use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def resolve(spec: str) -> Callable[..., Any]:
    """The callable named by "package.module:name" (or "package.module:Class.method")."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{spec!r} is not of the form 'module:callable'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def spec_of(factory: Callable[..., Any]) -> str:
    return f"{factory.__module__}:{factory.__qualname__}"
