# SPDX-License-Identifier: MIT
"""The potential energy equals the traced model's (``TracedPotential``), in value and gradient."""

import pickle

import pyro.distributions as dist
import pytest
import torch
from linear_gaussian import LinearForward, LinearGenerator

from invprior.likelihood import GaussianLikelihood, Likelihood
from invprior.model import DisentangledPrior, InverseProblem
from invprior.potential import PotentialEnergy, TracedPotential

TOL = 1e-10
F64 = torch.float64


class StudentTLikelihood(Likelihood):
    """Heavy-tailed noise, to check that the potential uses the problem's noise model."""

    def distribution(self, prediction):  # noqa: D102
        return dist.StudentT(4.0, prediction, 0.2 * torch.ones_like(prediction)).to_event(1)

    def fisher(self, prediction):  # noqa: D102
        return torch.diag_embed(torch.full_like(prediction, 5.0 / (7.0 * 0.04)))


NAMED = {  # named priors of two named variables; those left out get the default Uniform
    "uniform": lambda: None,
    "normal": lambda: {
        "u0": dist.Normal(torch.tensor(0.3, dtype=F64), torch.tensor(1.2, dtype=F64))
    },
    "lognormal": lambda: {
        "u1": dist.LogNormal(torch.tensor(0.1, dtype=F64), torch.tensor(0.5, dtype=F64))
    },
    "both_other": lambda: {
        "u0": dist.Normal(torch.tensor(0.3, dtype=F64), torch.tensor(1.2, dtype=F64)),
        "u1": dist.Gamma(torch.tensor(2.0, dtype=F64), torch.tensor(1.5, dtype=F64)),
    },
    "own_uniform": lambda: {
        "u1": dist.Uniform(torch.tensor(-1.0, dtype=F64), torch.tensor(4.0, dtype=F64))
    },
}

NOISE = {
    "scalar": lambda: 0.3,
    "per_sensor": lambda: GaussianLikelihood(torch.linspace(0.1, 0.5, 5, dtype=F64)),
    "student_t": StudentTLikelihood,
}


def _problem(aux_dim, named, noise):
    gen = LinearGenerator(aux_dim, 3, F64)
    prior = DisentangledPrior(gen, NAMED[named]() if aux_dim else None, tau=0.3)
    return InverseProblem(prior, LinearForward(5, F64), NOISE[noise]())


@pytest.mark.parametrize("noise", sorted(NOISE))
@pytest.mark.parametrize(
    ("aux_dim", "named"), [(0, "uniform"), *((2, named) for named in sorted(NAMED))]
)
def test_equals_traced(aux_dim, named, noise):
    problem = _problem(aux_dim, named, noise)
    torch.manual_seed(1)
    obs = problem.model().detach()
    potential = PotentialEnergy(problem, obs)

    def prior_part(z):
        return potential.prior_energy(potential.layout.unpack(z))

    def prior_model(obs):  # the prior alone, as a model of the data it ignores
        return problem.prior()

    traced = TracedPotential(problem.model, obs)
    traced_prior = TracedPotential(prior_model, obs)
    assert traced.layout.names == traced_prior.layout.names == potential.layout.names
    for _ in range(3):
        latent = torch.randn(potential.layout.dim, dtype=F64, requires_grad=True)
        for ours, reference in [(potential.flat, traced.flat), (prior_part, traced_prior.flat)]:
            value, expected = ours(latent), reference(latent)
            (grad,) = torch.autograd.grad(value, latent)
            (expected_grad,) = torch.autograd.grad(expected, latent)
            torch.testing.assert_close(value, expected, rtol=TOL, atol=TOL)
            torch.testing.assert_close(grad, expected_grad, rtol=TOL, atol=TOL)
    assert potential.num_evals == 3


def test_potential_pickles():
    problem = _problem(2, "normal", "scalar")
    obs = problem.model().detach()
    potential = pickle.loads(pickle.dumps(PotentialEnergy(problem, obs)))
    latent = torch.randn(potential.layout.dim, dtype=F64)
    expected = TracedPotential(problem.model, obs).flat(latent)
    torch.testing.assert_close(potential.flat(latent), expected)
