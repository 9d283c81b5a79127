# SPDX-License-Identifier: MIT
"""The exact-prior reference potential of examples/simulator_posterior.py."""

import numpy as np
import pytest
import torch

from invprior.priors import GridSpec
from invprior.priors.simulate import SOURCE_PARAMETERS, simulate_sources, source_fields

GRID = GridSpec((10, 12))


@pytest.fixture
def potential(load_example):
    example = load_example("simulator_posterior")
    data = simulate_sources(1, 3, GRID)
    ranges = {k: data.ranges[k] for k in SOURCE_PARAMETERS}
    rng = np.random.default_rng(0)
    F, c = rng.standard_normal((7, 120)), rng.standard_normal(7)
    obs = F @ data.fields[0].ravel() + c + 0.01 * rng.standard_normal(7)
    return example.ExactPriorPotential(ranges, GRID, F, c, obs, 0.05)


def test_probit_coordinates_map_onto_the_prior_box(potential):
    zeta = torch.tensor([[0.0] * 14, [-40.0] * 14, [40.0] * 14], dtype=torch.float64)
    factors = potential.factors(zeta)
    for k, (lo, hi, _, _) in SOURCE_PARAMETERS.items():
        np.testing.assert_allclose(factors[k].numpy(), [(lo + hi) / 2, lo, hi], atol=1e-12)


def test_potential_is_the_misfit_plus_the_standard_normal_term(potential):
    zeta = torch.randn(14, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    field = source_fields(potential.factors(zeta[None]), GRID)[0].numpy().ravel()
    misfit = (potential.data.numpy() - potential.F.numpy() @ field - potential.c.numpy()) / 0.05
    expected = 0.5 * (misfit @ misfit + zeta.numpy() @ zeta.numpy())
    np.testing.assert_allclose(float(potential({"zeta": zeta})), expected, rtol=1e-12)
    zeta.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: potential({"zeta": z}), (zeta,))


def test_mode_search_lowers_the_energy(load_example, potential):
    example = load_example("simulator_posterior")
    start = float(potential({"zeta": torch.zeros(14, dtype=torch.float64)}))
    mode, energy = example.find_mode(potential, restarts=2, seed=0)
    assert mode.shape == (14,) and energy < start
    np.testing.assert_allclose(float(potential({"zeta": mode})), energy)
