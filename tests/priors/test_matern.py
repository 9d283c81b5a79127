# SPDX-License-Identifier: MIT
"""Maximum-likelihood Matern hyperparameters recover those of the fields' own prior."""

import numpy as np
import pytest
import torch

from invprior.priors import GaussianFieldGenerator, GridSpec
from invprior.priors.matern import fit_matern

GRID = GridSpec((12, 12))


def _draws(nu, length_scale, variance=2.0, n=400):
    gp = GaussianFieldGenerator.matern(GRID, variance, length_scale, nu=nu, variance_fraction=1.0)
    torch.manual_seed(0)
    return gp.decode(torch.zeros(n, 0), torch.randn(n, gp.rec_dim)).double().numpy()


@pytest.mark.parametrize(("nu", "length_scale"), [(2.5, 0.3), (1.5, 0.2)])
def test_fit_matern_recovers_the_length_scale_smoothness_and_variance(nu, length_scale):
    fit = fit_matern(_draws(nu, length_scale), GRID, [0.1, 0.2, 0.3, 0.45], jitter=1e-6)
    assert fit["nu"] == nu and fit["length_scale"] == pytest.approx(length_scale)
    assert fit["variance"] == pytest.approx(2.0, rel=0.2)


def test_the_fit_ignores_the_mean_and_strides_large_grids():
    fields = _draws(2.5, 0.3, n=100)
    fit = fit_matern(fields, GRID, [0.1, 0.3])
    shifted = fit_matern(fields + 5.0, GRID, [0.1, 0.3])
    assert shifted["variance"] == pytest.approx(fit["variance"], rel=1e-9)
    assert shifted["log_likelihood"] == pytest.approx(fit["log_likelihood"], rel=1e-9)
    strided = fit_matern(fields, GRID, [0.1, 0.3], stride=2)
    assert np.isfinite(strided["log_likelihood"]) and strided["variance"] > 0


def test_bad_input_names_what_is_expected():
    with pytest.raises(ValueError, match=r"shape \(m >= 2, 12, 12\)"):
        fit_matern(np.zeros((3, 8, 8)), GRID)
    with pytest.raises(ValueError, match="jitter must be positive"):
        fit_matern(np.zeros((3, 12, 12)), GRID, jitter=0.0)
