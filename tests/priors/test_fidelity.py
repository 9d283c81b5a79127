# SPDX-License-Identifier: MIT
"""Fidelity scores: power spectrum, moment maps, energy distance, prior draws, the plot."""

import numpy as np
import pytest
import torch
from generators import BUILDERS, GRID, tiny_auxvae
from scipy.ndimage import gaussian_filter

from invprior.priors import BetaVAE, DLCFMGenerator
from invprior.priors.fidelity import (
    energy_distance,
    fidelity_scores,
    plot_fidelity,
    pooled_features,
    prior_draws,
    radial_power_spectrum,
    spectrum_error,
)


def _rough(n, seed):
    """Random fields with a power-law spectrum: structure at every scale."""
    rng = np.random.default_rng(seed)
    white = rng.normal(size=(n, 32, 32))
    return np.stack([gaussian_filter(w, 1.0) + 0.3 * w for w in white])


def test_spectrum_of_a_plane_wave_is_one_ring_and_mean_is_ignored():
    x = np.sin(2 * np.pi * 5 * np.arange(32) / 32)[:, None].repeat(32, 1)
    k, p = radial_power_spectrum(np.stack([x + 3.0, -x + 7.0]))
    assert list(k) == list(range(1, 17))
    assert np.argmax(p) == 4 and p[4] > 1e6 * np.delete(p, 4).max()


def test_parseval_total_power():
    x = _rough(3, 0)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    full = np.abs(np.fft.fft2(x)) ** 2
    assert np.isclose(full.mean(0).sum(), (x**2).sum(axis=(1, 2)).mean() * 32 * 32)


def test_smoothing_shows_in_the_spectrum_not_in_the_moments():
    data, other = _rough(200, 0), _rough(200, 1)
    smooth = np.stack([gaussian_filter(f, 2.0) for f in other])
    assert spectrum_error(other, data) < 0.05
    assert spectrum_error(smooth, data) > 10 * spectrum_error(other, data)
    same, blurred = fidelity_scores(other, data), fidelity_scores(smooth, data)
    assert abs(same["energy_distance"]) < 0.5 * blurred["energy_distance"]
    assert same["std_map_error"] < 0.1 < blurred["std_map_error"]


def test_energy_distance_known_answers():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    assert abs(energy_distance(a, b)) < 0.03
    # D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 * 2 - 0 - 0 for point masses 2 apart
    assert energy_distance(np.zeros((5, 3)), np.full((5, 3), 2 / np.sqrt(3))) == pytest.approx(4)


def test_pooled_features():
    x = np.arange(2 * 8 * 8, dtype=float).reshape(2, 8, 8)
    f = pooled_features(x, scale=2.0, pool=4)
    assert f.shape == (2, 4) and f[0, 0] == pytest.approx(x[0, :4, :4].mean() / 2)


def test_prior_draws_follow_the_generators_prior():
    torch.manual_seed(0)
    vae = tiny_auxvae()
    a, b = prior_draws(vae, 30, seed=1), prior_draws(vae, 30, seed=1, batch_size=7)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert a.shape == (30, *GRID.shape) and not np.allclose(a, prior_draws(vae, 30, seed=2))
    flow = DLCFMGenerator(vae, channels=2, embed=4, steps=1)
    flow.velocity.out.bias.data.fill_(1.0)  # constant velocity 1: the residual flow adds eps + 1
    torch.testing.assert_close(
        torch.as_tensor(prior_draws(flow, 4, seed=1)).float().mean(),
        torch.as_tensor(prior_draws(vae, 4, seed=1)).float().mean() + 1.0,
        atol=0.3,
        rtol=0,
    )


def test_plot_and_bad_input():
    data = _rough(20, 0)
    fig = plot_fidelity(data, {"a": _rough(10, 1)}, show=2)
    assert len(fig.axes) == 1 + 2 * 4
    with pytest.raises(ValueError, match="finite"):
        fidelity_scores(np.full((3, 4, 4), np.nan), np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="grid"):
        fidelity_scores(np.zeros((3, 4, 4)), np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match="named"):
        prior_draws(BUILDERS[BetaVAE](), 3)
