# SPDX-License-Identifier: MIT
"""A DL-CFM generator as a DisentangledPrior: the eps site, the potential, fixed eps."""

import pyro
import pytest
import torch
from linear_gaussian import LinearForward
from pyro.infer import Predictive

from invprior.model import DisentangledPrior, InverseProblem
from invprior.potential import PotentialEnergy, TracedPotential
from invprior.priors import AuxVAE, DLCFMGenerator, GridSpec
from invprior.sites import AUX_NOISE, EPS, FIELD, Z_REC

F64 = torch.float64
GRID = GridSpec((4, 4))  # the Aux-VAE halves the grid once


def _generator():
    # a 4 x 4 grid and the named variables of linear_gaussian.py, as LinearForward expects
    torch.manual_seed(0)
    ranges = {"u0": (-2.0, 3.0), "u1": (-2.0, 3.0)}
    base = AuxVAE(("u0", "u1"), ("m", "m"), ranges, [0.2, 0.5], [1.5, 2.5], 2, GRID, (3,), 6)
    return DLCFMGenerator(base, channels=3, embed=4, steps=2).to(F64)


def _problem(**kwargs):
    return InverseProblem(
        DisentangledPrior(_generator(), **kwargs), LinearForward(5, F64, grid=GRID), 0.3
    )


def test_eps_is_a_latent_site():
    prior = DisentangledPrior(_generator())
    assert list(prior.latent_shapes) == ["u0", "u1", AUX_NOISE, Z_REC, EPS]
    assert prior.latent_shapes[EPS] == GRID.shape
    trace = pyro.poutine.trace(prior).get_trace()
    eps = trace.nodes[EPS]["value"]
    assert eps.shape == GRID.shape and trace.nodes[FIELD]["value"].shape == GRID.shape
    latent = {n: trace.nodes[n]["value"] for n in prior.latent_shapes}
    torch.testing.assert_close(prior.field_of(latent), trace.nodes[FIELD]["value"])
    torch.testing.assert_close(prior.log_prob(latent), trace.log_prob_sum())


def test_predictive_batches_eps():
    samples = Predictive(_problem().model, num_samples=4, parallel=True)()
    assert samples[EPS].shape == (4, *GRID.shape) and samples[FIELD].shape == (4, *GRID.shape)


@pytest.mark.parametrize("fixed_eps", [False, True])
def test_potential_direct_equals_traced(fixed_eps):
    problem = _problem(fixed_eps=fixed_eps)
    torch.manual_seed(1)
    obs = problem.model().detach()
    direct = PotentialEnergy(problem, obs)
    n_eps = 0 if fixed_eps else GRID.shape[0] * GRID.shape[1]
    assert direct.layout.dim == 2 + 2 + 2 + n_eps
    latent = torch.randn(direct.layout.dim, dtype=F64, requires_grad=True)
    value, expected = direct.flat(latent), TracedPotential(problem.model, obs).flat(latent)
    (grad,) = torch.autograd.grad(value, latent)
    (expected_grad,) = torch.autograd.grad(expected, latent)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-10)
    if not fixed_eps:
        assert grad[direct.layout.positions((EPS,))].abs().sum() > 0


def test_fixed_eps_drops_the_site_and_decodes_the_mean_path():
    prior = DisentangledPrior(_generator(), fixed_eps=True)
    assert EPS not in prior.latent_shapes and prior.eps_shape is None
    trace = pyro.poutine.trace(prior).get_trace()
    assert EPS not in trace.nodes
    latent = {n: trace.nodes[n]["value"] for n in prior.latent_shapes}
    full = DisentangledPrior(prior.generator)
    with_zero = {**latent, EPS: torch.zeros(GRID.shape, dtype=F64)}
    torch.testing.assert_close(prior.field_of(latent), full.field_of(with_zero))


def test_map_laplace_and_nuts_run_unchanged():
    from invprior import infer

    problem = _problem()
    torch.manual_seed(1)
    obs = problem.model().detach()
    result = infer.map(problem, obs, num_restarts=1, max_iterations=5)
    assert result.sites[EPS].shape == GRID.shape and result.potential_energy < float("inf")
    gauss = infer.laplace(problem, obs, result)
    assert gauss.cov.shape == (6 + GRID.shape[0] * GRID.shape[1],) * 2
    config = {"num_samples": 4, "warmup_steps": 2, "num_chains": 1, "max_tree_depth": 3}
    draws = infer.nuts(problem, obs, init_mass="identity", disable_progbar=True, **config)
    assert draws.samples[EPS].shape[-2:] == GRID.shape
