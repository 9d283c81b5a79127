# SPDX-License-Identifier: MIT
"""The exact-prior posterior: the library's potential and MAP against an independent oracle.

A tiny run of ``examples/simulator_posterior.py`` is in ``tests/examples``.
"""

import math

import numpy as np
import pytest
import torch

from invprior import infer
from invprior.model import DisentangledPrior, InverseProblem
from invprior.pde.base import SolveCounter
from invprior.potential import PotentialEnergy
from invprior.priors import GridSpec, SimulatorGenerator
from invprior.priors.simulate import SOURCE_PARAMETERS, simulate_sources, source_fields

GRID = GridSpec((10, 12))
NOISE_STD = 0.05


class ExactPriorPotential:
    r"""Oracle: :math:`U(\zeta) = \tfrac12 \|(y - F x(u(\zeta)) - c) / \sigma\|^2 + \tfrac12
    \|\zeta\|^2` over the 14 factors in probit coordinates, :math:`u_k = l_k + (h_k - l_k)
    \Phi(\zeta_k)` (the potential the reference example evaluated by hand, without the
    normalising constants).
    """

    def __init__(self, ranges, grid, F, c, data, noise_std):
        self.names = tuple(ranges)
        bounds = torch.tensor([ranges[k] for k in self.names], dtype=torch.float64)
        self.low, self.span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        self.grid = grid
        self.F, self.c = torch.as_tensor(F), torch.as_tensor(c)
        self.data, self.noise_std = torch.as_tensor(data, dtype=torch.float64), noise_std

    def factors(self, zeta):
        u = self.low + self.span * torch.special.ndtr(zeta)
        return {k: u[:, j] for j, k in enumerate(self.names)}

    def __call__(self, zeta):
        field = source_fields(self.factors(zeta[None]), self.grid)[0]
        misfit = (self.data - (field.reshape(-1) @ self.F.T + self.c)) / self.noise_std
        return 0.5 * (misfit.square().sum() + zeta.square().sum())


class AffineForward:
    """``y = F vec(x) + c`` as a :class:`invprior.model.ForwardMap` (no PDE)."""

    batched_vjp = True

    def __init__(self, F, c, grid):
        self.F, self.c = torch.as_tensor(F), torch.as_tensor(c)
        self.n_obs, self.grid_shape, self.grid_bbox = len(c), grid.shape, grid.bbox
        self.counter = SolveCounter()

    def __call__(self, field):
        return field.flatten(-2) @ self.F.T + self.c


@pytest.fixture
def case():
    """The library's exact-prior problem, its data and the oracle, on a 10 x 12 grid."""
    data = simulate_sources(1, 3, GRID)
    rng = np.random.default_rng(0)
    F, c = rng.standard_normal((7, 120)), rng.standard_normal(7)
    obs = torch.as_tensor(F @ data.fields[0].ravel() + c + 0.01 * rng.standard_normal(7))
    prior = DisentangledPrior(SimulatorGenerator(GRID))
    problem = InverseProblem(prior, AffineForward(F, c, GRID), NOISE_STD)
    ranges = {k: data.ranges[k] for k in SOURCE_PARAMETERS}
    return problem, obs, ExactPriorPotential(ranges, GRID, F, c, obs, NOISE_STD)


def _constant(n_obs):
    """``-log`` of the normalising constants the oracle leaves out: 14 N(0, 1), the noise."""
    return 14 * 0.5 * math.log(2 * math.pi) + n_obs * (
        0.5 * math.log(2 * math.pi) + math.log(NOISE_STD)
    )


def test_latent_is_the_oracles_probit_coordinates(case):
    problem, obs, oracle = case
    potential = PotentialEnergy(problem, obs)
    assert potential.layout.names == ("x0", "y0", "amplitude", "width", "z_rec")
    assert potential.layout.dim == 14
    zeta = torch.randn(3, 14, dtype=torch.float64)
    values = potential.constrain(potential.layout.unpack(zeta))
    u = torch.stack([values[k] for k in problem.prior.aux_names], -1)
    factors = problem.prior.generator.factors(u, values["z_rec"])
    expected = oracle.factors(zeta)
    assert list(factors) == list(expected)
    for k, v in expected.items():
        torch.testing.assert_close(factors[k], v, rtol=1e-15, atol=1e-15)


def test_potential_equals_the_oracle(case):
    problem, obs, oracle = case
    potential = PotentialEnergy(problem, obs)
    for _ in range(3):
        zeta = torch.randn(14, dtype=torch.float64, requires_grad=True)
        energy, expected = potential.flat(zeta), oracle(zeta)
        np.testing.assert_allclose(
            energy.item(), expected.item() + _constant(problem.n_obs), rtol=1e-12
        )
        (grad,) = torch.autograd.grad(energy, zeta)
        (grad_expected,) = torch.autograd.grad(expected, zeta)
        torch.testing.assert_close(grad, grad_expected, rtol=1e-10, atol=1e-10)
        assert expected.item() > 0


def test_library_map_finds_a_mode_of_the_oracle(case):
    problem, obs, oracle = case
    start = float(oracle(torch.zeros(14, dtype=torch.float64)))
    mode = infer.map(problem, obs, seed=0, num_restarts=2, max_iterations=500)
    energy = float(oracle(mode.latent))
    assert mode.latent.shape == (14,) and energy < start
    np.testing.assert_allclose(mode.potential_energy, energy + _constant(problem.n_obs))
    zeta = mode.latent.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(oracle(zeta), zeta)
    assert float(grad.abs().max()) < 1e-3  # stationary: 1e4 at zeta = 0
