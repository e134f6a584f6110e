"""The MI estimator with the real packaged SmolLM2 GGUF as proxy: log-probabilities checked by hand,
and toy batches whose answer is known."""

from __future__ import annotations

import math
import random

import pytest

from compressors.lm.batch_scoring import BatchedContinuationScorer
from compressors.lm.models import packaged_gguf
from compressors.lm.scoring import LlamaCppScorer, TransformersScorer
from compressors.mi import estimate_mi, own_and_prior_logprobs, prior_gain

pytestmark = pytest.mark.slow

CONTEXT = "Ann adopted a cat named Miso on 13 March 2024."
COMPRESSION = "Ann's cat is called Miso."


@pytest.fixture(scope="module")
def scorer() -> LlamaCppScorer:
    return LlamaCppScorer(context_tokens=512)


def by_hand(rows, targets: list[int]) -> float:  # type: ignore[no-untyped-def]
    """Sum of log softmax, in plain Python floats, one row per target token."""
    total = 0.0
    for row, target in zip(rows, targets, strict=True):
        values = [float(v) for v in row]
        peak = max(values)
        total += values[target] - (peak + math.log(math.fsum(math.exp(v - peak) for v in values)))
    return total


def test_sequence_logprob_matches_a_hand_computation_from_the_logits(scorer: LlamaCppScorer) -> None:
    prompt = scorer.prompt_tokens(CONTEXT)
    target = scorer.text_tokens(COMPRESSION)
    fast = scorer.exact_continuation_logprobs(prompt, [target])[0]
    llm = scorer.llm
    llm.reset()
    llm.eval(prompt + target)  # one pass over the whole sequence; row k predicts token k + 1
    manual = by_hand(llm.scores[len(prompt) - 1 : len(prompt) + len(target) - 1], target)
    assert fast == pytest.approx(manual, abs=1e-6)
    assert -20 * len(target) < fast < 0

    # token by token (a different code path in llama.cpp: batch size 1): the same up to kernel rounding
    llm.reset()
    llm.eval(prompt)
    stepwise = 0.0
    for token in target:
        stepwise += by_hand([llm.scores[llm.n_tokens - 1]], [token])
        llm.eval([token])
    assert stepwise == pytest.approx(fast, abs=0.05 * len(target))


def test_batched_logprobs_agree_with_one_decode_per_continuation(scorer: LlamaCppScorer) -> None:
    """Continuations packed into multi-sequence batches (sharing the prompt's KV cells) score as
    when each is decoded alone after the prompt, up to kernel rounding: a token's row lands at
    another offset of the batch (measured: up to ~0.35 nats on a token, the size of the
    difference between one-batch and token-by-token evaluation in the test above)."""
    rng = random.Random(1)
    words = "Ann Miso cat March adopted vet blue river Tokyo piano Tuesday".split()
    continuations = [scorer.text_tokens(COMPRESSION), [], scorer.text_tokens("Ann")]
    continuations += [scorer.text_tokens(" ".join(rng.choice(words) for _ in range(rng.randint(2, 30)))) for _ in range(9)]
    prompt = scorer.prompt_tokens(CONTEXT)
    exact = scorer.continuation_token_logprobs(prompt, continuations)
    # default batches, and tiny ones: continuations split across decodes, more of them than sequences
    small = BatchedContinuationScorer(scorer.llm, 512, batch_tokens=16, sequences=3)
    try:
        for batched in (scorer.batched_token_logprobs(prompt, continuations), small.token_logprobs(prompt, continuations)):
            assert [len(b) for b in batched] == [len(c) for c in continuations]
            for e, b in zip(exact, batched, strict=True):
                assert b == pytest.approx(e, abs=0.4)
                assert float(b.sum()) == pytest.approx(float(e.sum()), abs=0.05 * max(1, len(e)))
                assert b[:1] == pytest.approx(e[:1], abs=1e-6)  # the first token: the prompt's own logits
    finally:
        small.close()
    alone = [scorer.batched_token_logprobs(prompt, [c])[0] for c in continuations]  # one sequence: the same kernels
    assert all(a == pytest.approx(e, abs=1e-6) for a, e in zip(alone, exact, strict=True))
    sums = scorer.continuation_logprobs(prompt, continuations)  # batched by default
    exact_sums = scorer.exact_continuation_logprobs(prompt, continuations)
    assert sums == pytest.approx(exact_sums, abs=0.05 * max(len(c) for c in continuations))


def test_a_compression_is_likelier_after_its_own_context(scorer: LlamaCppScorer) -> None:
    target = scorer.text_tokens(COMPRESSION)
    own, other = (
        scorer.continuation_logprobs(scorer.prompt_tokens(x), [target])[0]
        for x in (CONTEXT, "The build failed because the disk on ci-runner-3 was full.")
    )
    assert own > other + 5


def test_toy_batches_with_known_answers(scorer: LlamaCppScorer) -> None:
    rng = random.Random(0)
    words = "apple river stone violet marble falcon copper lantern orbit meadow cipher tundra".split()
    contexts = [" ".join(rng.choice(words) for _ in range(8)) + f" code {rng.randint(1000, 9999)}" for _ in range(4)]
    copies = estimate_mi(contexts, contexts, scorer)  # z_i = x_i: each compression identifies its context
    assert 0.9 * math.log(4) <= copies.nats <= math.log(4) + 1e-9
    assert copies.bits == pytest.approx(copies.nats / math.log(2))
    assert copies.compression_ratio == pytest.approx(1.0)
    assert copies.bits_per_output_token == pytest.approx(copies.bits / copies.output_tokens)

    same = estimate_mi(contexts, ["Someone listed some words."] * 4, scorer)  # the same z for all: nothing
    assert same.nats == 0.0 and same.bits_per_output_token == 0.0


def test_the_prior_gain_separates_a_copy_a_summary_and_an_unrelated_text(scorer: LlamaCppScorer) -> None:
    contexts = [CONTEXT, "The build failed because the disk on ci-runner-3 was full."]
    outputs = {
        "copy": contexts,
        "summary": [COMPRESSION, "ci-runner-3 ran out of disk."],
        "unrelated": ["The weather in Lisbon was mild.", "Bob prefers green tea."],
    }
    own, prior = own_and_prior_logprobs(contexts, outputs, scorer)
    gains = {k: prior_gain(own[k], prior[k], [len(scorer.text_tokens(z)) for z in outputs[k]]) for k in outputs}
    # own[i] is the same number the N x N pass puts on its diagonal
    assert own["summary"][0] == pytest.approx(scorer.continuation_logprobs(scorer.prompt_tokens(CONTEXT), [scorer.text_tokens(COMPRESSION)])[0], abs=0.5)
    assert gains["copy"].bits > gains["summary"].bits > 5 > gains["unrelated"].bits
    assert abs(gains["unrelated"].bits) < 5  # no more likely with its window than without
    assert gains["copy"].ci_low_bits <= gains["copy"].bits <= gains["copy"].ci_high_bits


def test_transformers_proxy_agrees_with_llama_cpp_on_the_same_gguf(scorer: LlamaCppScorer) -> None:
    import torch

    threads = torch.get_num_threads()
    try:
        hf = TransformersScorer(str(packaged_gguf()), device="cpu", threads=1)
        assert hf.text_tokens(COMPRESSION) == scorer.text_tokens(COMPRESSION)
        hf_value = hf.continuation_logprobs(hf.prompt_tokens(CONTEXT), [hf.text_tokens(COMPRESSION)])[0]
    finally:
        torch.set_num_threads(threads)
    llama_value = scorer.continuation_logprobs(scorer.prompt_tokens(CONTEXT), [scorer.text_tokens(COMPRESSION)])[0]
    # transformers de-quantizes the Q4_1 weights to float32; llama.cpp multiplies them quantized
    assert hf_value == pytest.approx(llama_value, abs=0.15 * len(scorer.text_tokens(COMPRESSION)))
