"""`transformers`: any Hugging Face causal LM (local path, hub id, or a .gguf file), CPU or GPU.

Decoding is not constrained here; the answer is validated against the unit schema
and, when it does not fit, the model is asked once more with the error.
"""

from __future__ import annotations

import time
from typing import Any

from compressors.lm.client import Generation, GenerationTimeout, Messages
from compressors.lm.compressor import LMCompressor
from compressors.lm.models import DEFAULT_CONTEXT_TOKENS, load_causal_lm, model_label, packaged_gguf


class TransformersCompressor(LMCompressor):
    name = "transformers"

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        threads: int | None = None,
        context_tokens: int | None = None,
        timeout_s: float | None = None,
        max_tokens: int | None = None,
        **_: Any,
    ) -> None:
        super().__init__(model_label(model or packaged_gguf()), timeout_s, max_tokens)
        self.lm, self.tokenizer, self.device = load_causal_lm(model, device, threads)
        self.context_tokens = int(context_tokens or DEFAULT_CONTEXT_TOKENS)

    def _generate(self, messages: Messages, schema: dict[str, Any], deadline: float) -> Generation:
        import torch

        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        if not isinstance(ids, torch.Tensor):  # newer tokenizers return a BatchEncoding
            ids = ids["input_ids"]
        room = self.context_tokens - self.max_tokens
        if ids.shape[1] > room:
            raise ValueError(f"prompt of {ids.shape[1]} tokens does not fit the {self.context_tokens}-token context")
        ids = ids.to(self.device)
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise GenerationTimeout(f"no time left of {self.timeout_s:.0f} s")
        with torch.inference_mode():
            output = self.lm.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=self.max_tokens,
                do_sample=False,
                max_time=remaining,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        if time.perf_counter() > deadline:
            raise GenerationTimeout(f"no complete answer within {self.timeout_s:.0f} s")
        new = output[0, ids.shape[1] :]
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True), int(ids.shape[1]), int(new.shape[0]))


def create_transformers(**options: Any) -> TransformersCompressor:
    return TransformersCompressor(**options)
