# SPDX-License-Identifier: MIT
"""The direct potential energy equals the traced one, in value and gradient."""

import pickle

import pyro.distributions as dist
import pytest
import torch
from linear_gaussian import LinearForward, LinearGenerator

from invprior.likelihood import GaussianLikelihood, Likelihood
from invprior.model import DisentangledPrior, InverseProblem
from invprior.potential import PotentialEnergy

TOL = 1e-10


class StudentTLikelihood(Likelihood):
    """Heavy-tailed noise, to check that the potential uses the problem's noise model."""

    def distribution(self, prediction):  # noqa: D102
        return dist.StudentT(4.0, prediction, 0.2 * torch.ones_like(prediction)).to_event(1)

    def fisher(self, prediction):  # noqa: D102
        return torch.diag_embed(torch.full_like(prediction, 5.0 / (7.0 * 0.04)))


def _problem(aux_dim, noise):
    f64 = torch.float64
    gen = LinearGenerator(aux_dim, 3, f64)
    # u0: Normal (identity transform); u1: the default Uniform of the training range.
    named = {"u0": dist.Normal(torch.tensor(0.3, dtype=f64), torch.tensor(1.2, dtype=f64))}
    prior = DisentangledPrior(gen, named if aux_dim else None, tau=0.3)
    return InverseProblem(prior, LinearForward(5, f64), noise)


NOISE = {
    "scalar": lambda: 0.3,
    "per_sensor": lambda: GaussianLikelihood(torch.linspace(0.1, 0.5, 5, dtype=torch.float64)),
    "student_t": StudentTLikelihood,
}


@pytest.mark.parametrize("noise", sorted(NOISE))
@pytest.mark.parametrize("aux_dim", [0, 2])
def test_direct_equals_traced(aux_dim, noise):
    problem = _problem(aux_dim, NOISE[noise]())
    torch.manual_seed(1)
    obs = problem.model().detach()
    direct = PotentialEnergy(problem, obs)
    traced = PotentialEnergy(problem, obs, traced=True)
    assert not direct.traced

    def prior_part(potential):
        return lambda z: potential.prior_energy(potential.layout.unpack(z))

    for _ in range(3):
        latent = torch.randn(direct.layout.dim, dtype=torch.float64, requires_grad=True)
        for ours, ref in [(direct.flat, traced.flat), (prior_part(direct), prior_part(traced))]:
            value, expected = ours(latent), ref(latent)
            (grad,) = torch.autograd.grad(value, latent)
            (expected_grad,) = torch.autograd.grad(expected, latent)
            torch.testing.assert_close(value, expected, rtol=TOL, atol=TOL)
            torch.testing.assert_close(grad, expected_grad, rtol=TOL, atol=TOL)
    assert direct.num_evals == traced.num_evals == 3


@pytest.mark.parametrize("noise", sorted(NOISE))
def test_uniform_named_block_equals_traced(noise):
    # every named prior the default Uniform: the vectorised path of the direct potential
    gen = LinearGenerator(3, 2, torch.float64)
    problem = InverseProblem(
        DisentangledPrior(gen, tau=0.3), LinearForward(5, torch.float64), NOISE[noise]()
    )
    torch.manual_seed(2)
    obs = problem.model().detach()
    direct = PotentialEnergy(problem, obs)
    traced = PotentialEnergy(problem, obs, traced=True)
    assert direct._bounds is not None and traced._bounds is None
    for _ in range(3):
        latent = torch.randn(direct.layout.dim, dtype=torch.float64, requires_grad=True)
        for likelihood in (True, False):
            fn = (
                direct.flat
                if likelihood
                else (lambda z: direct.prior_energy(direct.layout.unpack(z)))
            )
            ref = (
                traced.flat
                if likelihood
                else (lambda z: traced.prior_energy(traced.layout.unpack(z)))
            )
            value, expected = fn(latent), ref(latent)
            torch.testing.assert_close(value, expected, rtol=TOL, atol=TOL)
            torch.testing.assert_close(
                torch.autograd.grad(value, latent)[0],
                torch.autograd.grad(expected, latent)[0],
                rtol=TOL,
                atol=TOL,
            )


def test_direct_potential_pickles():
    problem = _problem(2, 0.3)
    obs = problem.model().detach()
    potential = pickle.loads(pickle.dumps(PotentialEnergy(problem, obs)))
    latent = torch.zeros(potential.layout.dim, dtype=torch.float64)
    torch.testing.assert_close(
        potential.flat(latent), PotentialEnergy(problem, obs, traced=True).flat(latent)
    )
