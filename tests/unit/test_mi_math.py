"""The MI estimator's arithmetic on log-probability matrices whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compressors.lm.scoring import fit_prompt, log_softmax_rows, token_logprob_sum
from compressors.mi import mi_from_logprobs, paired_difference, prior_gain


def test_identical_compressions_carry_nothing() -> None:
    # the same z for every x: p(z|x_l) varies with l, but the average term is <= 0 (Jensen) and clipped
    rng = np.random.default_rng(0)
    column = rng.normal(-30, 3, size=8)
    logp = np.tile(column, (8, 1))  # logp[i, l] = log p(z | x_l) for every i
    nats, per_item = mi_from_logprobs(logp)
    assert nats == 0.0
    assert np.mean(per_item) <= 1e-12


def test_perfectly_identifying_compressions_carry_log_n() -> None:
    n = 6
    logp = np.full((n, n), -500.0)
    np.fill_diagonal(logp, -5.0)
    nats, _ = mi_from_logprobs(logp)
    assert math.isclose(nats, math.log(n), rel_tol=1e-9)


def test_estimate_never_exceeds_log_n() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        logp = rng.normal(0, 50, size=(5, 5))
        nats, _ = mi_from_logprobs(logp)
        assert 0.0 <= nats <= math.log(5) + 1e-9


def test_token_logprob_sum_matches_a_hand_computation() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, -1.0]])
    targets = [2, 0]
    by_hand = (3.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3))) + (
        0.5 - math.log(2 * math.exp(0.5) + math.exp(-1.0))
    )
    assert math.isclose(token_logprob_sum(logits, targets), by_hand, rel_tol=1e-12)
    assert np.allclose(np.exp(log_softmax_rows(logits)).sum(axis=1), 1.0)


def test_fit_prompt_keeps_the_first_token_and_the_end() -> None:
    assert fit_prompt([1, 2, 3, 4, 5], 10) == [1, 2, 3, 4, 5]
    assert fit_prompt([1, 2, 3, 4, 5], 3) == [1, 4, 5]


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_windows() -> None:
    import numpy as np

    from compressors.mi import bootstrap_interval

    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 0.5, 16), rng.normal(1.0, 0.5, 256)
    for terms in (small, large):
        low, high = bootstrap_interval(terms)
        assert low <= terms.mean() <= high
    assert np.subtract(*bootstrap_interval(large)[::-1]) < np.subtract(*bootstrap_interval(small)[::-1])
    assert bootstrap_interval([-1.0, -2.0]) == (0.0, 0.0)  # clipped like the estimate
    assert bootstrap_interval([0.5]) == (0.5, 0.5)


def test_prior_gain_is_the_mean_log_ratio_in_bits_and_is_not_clipped() -> None:
    own, prior = [-10.0, -20.0, -5.0], [-10.0 - math.log(2) * 8, -20.0 - math.log(2) * 4, -5.0 + math.log(2) * 3]
    gain = prior_gain(own, prior, [4, 4, 4])
    assert gain.per_item_bits == [pytest.approx(8.0), pytest.approx(4.0), pytest.approx(-3.0)]
    assert gain.bits == pytest.approx(3.0) and gain.bits_per_output_token == pytest.approx(0.75)
    assert gain.ci_low_bits <= gain.bits <= gain.ci_high_bits
    assert prior_gain([], [], []).bits == 0.0


def test_a_paired_difference_is_tighter_than_the_spread_of_windows() -> None:
    rng = np.random.default_rng(2)
    windows = rng.normal(500, 200, size=64)  # windows differ a lot; one compressor keeps 10 bits more of each
    mean, low, high = paired_difference(windows + 10 + rng.normal(0, 2, size=64), windows)
    assert low <= mean <= high and low > 9 and high < 11
    assert paired_difference([], []) == (0.0, 0.0, 0.0)
