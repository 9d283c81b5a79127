# SPDX-License-Identifier: MIT
"""MAP and Laplace against the closed-form posterior of a linear-Gaussian problem."""

import math

import pyro.distributions as dist
import pytest
import torch
from linear_gaussian import (
    GRID,
    FailingForward,
    LinearGenerator,
    NaNForward,
    exact_posterior,
    make_problem,
    synthetic_obs,
)

from invprior import infer
from invprior.model import DisentangledPrior, InverseProblem
from invprior.sites import FIELD, Z_AUX, Z_REC

RTOL = 1e-6


@pytest.mark.parametrize("aux_dim", [0, 2])
def test_map_and_laplace_match_closed_form(aux_dim):
    problem = make_problem(aux_dim=aux_dim, rec_dim=3)
    obs = synthetic_obs(problem)
    mean, cov = exact_posterior(problem, obs)
    result = infer.map(problem, obs, num_restarts=2)
    torch.testing.assert_close(result.latent, mean, rtol=RTOL, atol=RTOL * mean.abs().max())
    gauss = infer.laplace(problem, obs, result)
    torch.testing.assert_close(gauss.cov, cov, rtol=RTOL, atol=RTOL * cov.abs().max())
    # named sites in physical units and the decoded field at the MAP
    for j, name in enumerate(problem.prior.aux_names):
        torch.testing.assert_close(result.sites[name], mean[j], rtol=RTOL, atol=RTOL)
    gen = problem.prior.generator
    z_aux = result.sites.get(Z_AUX, mean.new_zeros(0))
    torch.testing.assert_close(result.sites[FIELD], gen.decode(z_aux, result.sites[Z_REC]))
    assert gauss.pde_solves == {"forward": 1, "adjoint": problem.n_obs}
    assert result.pde_solves["forward"] > 0 and len(result.history) > 1


def test_laplace_samples_map_to_sites():
    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    gauss = infer.laplace(problem, obs, infer.map(problem, obs, num_restarts=1))
    draws = gauss.sample(4000, seed=1)
    assert draws[FIELD].shape == (4000, 3, 4)
    mean, cov = exact_posterior(problem, obs)
    torch.testing.assert_close(draws["u1"].mean(), mean[1], atol=4 * cov[1, 1].sqrt() / 60, rtol=0)
    torch.testing.assert_close(gauss.sample(3, seed=5)["u0"], gauss.sample(3, seed=5)["u0"])


def test_map_is_reproducible_and_keeps_restarts():
    problem = make_problem()
    obs = synthetic_obs(problem)
    a = infer.map(problem, obs, num_restarts=3, seed=4, max_iterations=3)
    b = infer.map(problem, obs, num_restarts=3, seed=4, max_iterations=3)
    assert a.restart_energies == b.restart_energies
    assert a.restart_latents.shape == (3, problem.prior.generator.aux_dim * 2 + 2)
    assert a.potential_energy == min(a.restart_energies)


def test_map_with_adam_and_uniform_priors_stays_in_range():
    gen = LinearGenerator(2, 2, torch.float64)
    problem = InverseProblem(DisentangledPrior(gen), make_problem().forward, 0.3)
    obs = synthetic_obs(problem)
    result = infer.map(problem, obs, optimizer="adam", lr=0.05, max_iterations=50, num_restarts=1)
    assert -2.0 < float(result.sites["u0"]) < 3.0
    assert result.history[-1] < result.history[0]


def test_map_skips_restarts_with_failed_solves(pde_solve_error):
    gen = LinearGenerator(1, 2, torch.float64)
    problem = InverseProblem(gen, FailingForward(pde_solve_error, threshold=-10.0), 0.3)
    obs = torch.zeros(problem.n_obs, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="all 2 MAP restarts failed"):
        infer.map(problem, obs, num_restarts=2)


def test_map_steps_back_from_non_finite_energies():
    """Data that pull towards a region of NaN predictions: the line search must step back
    (no NaN latent reaching the Uniform priors' support check) and the MAP stay finite."""
    gen = LinearGenerator(2, 2, torch.float64)
    low = torch.tensor(-2.0, dtype=torch.float64)
    uniform = {name: dist.Uniform(low, 3.0) for name in gen.aux_names}
    forward = NaNForward(threshold=0.4)
    problem = InverseProblem(DisentangledPrior(gen, uniform), forward, 0.05)
    field = torch.full(GRID.shape, 1.0, dtype=torch.float64)  # mean 1 > 0.4: NaN there
    obs = super(NaNForward, forward).__call__(field)
    result = infer.map(problem, obs, num_restarts=3, max_iterations=100)
    assert math.isfinite(result.potential_energy) and torch.isfinite(result.latent).all()
    assert float(result.sites[FIELD].mean()) <= 0.4
    assert any(math.isinf(h) for h in result.history)  # it did meet the NaN region


def test_map_config_is_checked():
    with pytest.raises(ValueError, match="optimizer must be"):
        infer.MapConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="num_restarts"):
        infer.MapConfig(num_restarts=0)


def test_laplace_rejects_a_foreign_map():
    problem = make_problem(aux_dim=2)
    obs = synthetic_obs(problem)
    other = make_problem(aux_dim=0)
    result = infer.map(other, synthetic_obs(other), num_restarts=1, max_iterations=2)
    with pytest.raises(ValueError, match="latent coordinates"):
        infer.laplace(problem, obs, result)
