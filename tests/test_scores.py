# SPDX-License-Identifier: MIT
"""The sample CRPS against closed forms and a brute-force pair sum."""

import math

import numpy as np
import pytest

from invprior.scores import crps


def test_crps_matches_the_gaussian_closed_form():
    """Sample CRPS of N(0, 1) draws against x: z(2Phi(z)-1) + 2phi(z) - 1/sqrt(pi)."""
    draws = np.random.default_rng(0).standard_normal((20000, 1, 2))
    truth = np.array([[0.0, 1.0]])
    exact = [
        z * math.erf(z / math.sqrt(2)) + 2 * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        - 1 / math.sqrt(math.pi)
        for z in (0.0, 1.0)
    ]  # fmt: skip
    assert crps(draws, truth) == pytest.approx(np.mean(exact), abs=5e-3)


def test_crps_equals_the_pair_sum_estimator():
    rng = np.random.default_rng(1)
    draws, truth = rng.standard_normal((7, 3, 2)), rng.standard_normal((3, 2))
    x = draws.reshape(7, -1)
    skill = np.abs(x - truth.reshape(-1)).mean(0)
    pairs = np.abs(x[:, None] - x[None]).sum((0, 1)) / (7 * 6)
    assert crps(draws, truth) == pytest.approx(float((skill - 0.5 * pairs).mean()), rel=1e-12)


def test_crps_of_a_point_mass_is_the_absolute_error():
    assert crps(np.full((5, 2), 3.0), np.array([1.0, 4.0])) == pytest.approx(1.5)


@pytest.mark.parametrize(("draws", "truth"), [(np.zeros((1, 2)), np.zeros(2)),
                                              (np.zeros((4, 2)), np.zeros(3))])  # fmt: skip
def test_crps_refuses_too_few_draws_or_a_mismatched_truth(draws, truth):
    with pytest.raises(ValueError, match="n >= 2"):
        crps(draws, truth)
