# SPDX-License-Identifier: MIT
"""Shape-matching score and its k-NN KL estimator against known divergences."""

import numpy as np
import pytest

from invprior.priors.shape_matching import knn_kl_divergence, shape_matching_score

N = 4000


def test_knn_kl_matches_closed_form_gaussians():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(N), 1.0 + 2.0 * rng.standard_normal(N)
    exact = np.log(2.0) + (1.0 + 1.0) / 8.0 - 0.5  # KL(N(0,1) || N(1,4))
    assert knn_kl_divergence(x, y) == pytest.approx(exact, abs=0.05)
    assert abs(knn_kl_divergence(x, rng.standard_normal(N))) < 0.05


def test_affine_latent_matches_and_other_shape_does_not():
    rng = np.random.default_rng(2)
    u = rng.uniform(size=(N, 1))
    z = np.column_stack([3.0 * u[:, 0] - 1.0, rng.standard_normal(N)])
    out = shape_matching_score(u, z)
    assert out["kl"].shape == (1, 2)
    assert out["best_latent"].tolist() == [0]
    assert out["kl"][0, 0] < 0.02
    # KL(uniform || best Gaussian) = log sqrt(2 pi e / 12) = 0.18 nats.
    assert out["kl"][0, 1] > 0.08
    assert out["score"] == pytest.approx(out["kl"][0, 0])


def test_negative_scale_of_a_skewed_factor_is_found():
    rng = np.random.default_rng(3)
    u = rng.exponential(size=(N, 1))
    z = np.column_stack([rng.exponential(size=N), -2.0 * u[:, 0] + 5.0])
    out = shape_matching_score(u, z)
    assert out["kl"][0, 1] < 0.02
    assert out["kl"][0, 0] < 0.02  # same shape, unpaired: the score compares marginals
    assert out["scale"][0, 1] < 0 < out["scale"][0, 0]


def test_reproducible_with_seed_and_constant_latent_is_inf():
    rng = np.random.default_rng(4)
    u = rng.normal(size=(400, 2))
    z = np.column_stack([u[:, 1], np.ones(400), rng.normal(size=400)])
    a, b = shape_matching_score(u, z, seed=7), shape_matching_score(u, z, seed=7)
    np.testing.assert_array_equal(a["kl"], b["kl"])
    assert np.isinf(a["kl"][:, 1]).all()
    assert a["best_latent"][1] == 0


@pytest.mark.parametrize(
    ("factors", "latents", "k", "match"),
    [
        (np.full((50, 1), np.nan), np.ones((50, 1)), 5, "NaN"),
        (np.ones((50, 1)), np.arange(50.0), 5, "constant"),
        (np.arange(50.0), np.arange(40.0), 5, "rows"),
        (np.arange(20.0), np.arange(20.0), 10, "each half"),
        (np.arange(20.0), np.arange(20.0), 0, "`k`"),
        (np.repeat(np.arange(5.0), 10), np.arange(50.0), 2, "repeats a value"),
    ],
)
def test_bad_input(factors, latents, k, match):
    with pytest.raises(ValueError, match=match):
        shape_matching_score(factors, latents, k=k)


def test_knn_kl_bad_input():
    with pytest.raises(ValueError, match="one-dimensional"):
        knn_kl_divergence(np.ones((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match="more than k"):
        knn_kl_divergence(np.arange(3.0), np.arange(10.0), k=3)
