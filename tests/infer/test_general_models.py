# SPDX-License-Identifier: MIT
"""MAP, Laplace and NUTS on Pyro models beyond a fixed-noise inverse problem."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from linear_gaussian import exact_posterior, make_problem, synthetic_obs

from invprior import infer
from invprior.model import InverseProblem
from invprior.potential import (
    PotentialEnergy,
    TracedPotential,
    potential_energy,
    probit_interval,
)
from invprior.sites import FIELD, NOISE_STD

F64 = torch.float64
X = torch.linspace(-2.0, 2.0, 40, dtype=F64)
TRUTH = {"slope": 1.3, "offset": 0.25, "sigma": 0.4}
NUTS_KW = {"num_samples": 300, "warmup_steps": 300, "num_chains": 2, "disable_progbar": True}


def regression(obs):
    """A line with an unknown noise scale; the offset has a bounded (probit) prior."""
    slope = pyro.sample("slope", dist.Normal(torch.tensor(0.0, dtype=F64), 2.0))
    offset = pyro.sample("offset", dist.Uniform(torch.tensor(-1.0, dtype=F64), 1.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(torch.tensor(1.0, dtype=F64)))
    mean = pyro.deterministic("mean", offset + slope * X)
    with pyro.plate("data", len(X)):
        return pyro.sample("y", dist.Normal(mean, sigma), obs=obs)


def regression_data():
    torch.manual_seed(7)
    values = {name: torch.tensor(value, dtype=F64) for name, value in TRUTH.items()}
    return pyro.poutine.condition(regression, data=values)(None).detach()


def interval_90(draws):
    return np.quantile(np.asarray(draws).ravel(), [0.05, 0.95])


def test_unknown_noise_scale_is_recovered_by_map_and_nuts():
    obs = regression_data()
    start = infer.map(regression, obs, seed=1, num_restarts=2)
    assert start.pde_solves is None
    assert start.sites["sigma"] == pytest.approx(TRUTH["sigma"], rel=0.3)
    assert start.sites["mean"].shape == X.shape and "y" not in start.sites
    result = infer.nuts(regression, obs, init=start, seed=2, **NUTS_KW)
    assert result.samples["sigma"].shape == (2, 300)
    assert result.samples["mean"].shape == (2, 300, len(X))  # deterministic sites too
    assert result.num_divergences == 0
    low, high = interval_90(result.samples["sigma"])
    assert low < TRUTH["sigma"] < high
    # the line: posterior means at the least-squares fit (the priors are wide), within
    # about 4 Monte Carlo standard errors (300 draws per chain)
    design = torch.stack([torch.ones_like(X), X], 1)
    fit = torch.linalg.lstsq(design, obs[:, None]).solution.squeeze()
    for name, value in zip(("offset", "slope"), fit, strict=True):
        draws = result.samples[name]
        assert abs(float(draws.mean() - value)) < 0.25 * float(draws.std()), name
    # the bounded site moves on the probit scale: zeta = Phi^-1((u + 1) / 2)
    zeta = result.latent[..., list(result.samples).index("offset")]
    u = probit_interval(torch.tensor(-1.0, dtype=F64), torch.tensor(1.0, dtype=F64))(zeta)
    torch.testing.assert_close(u, result.samples["offset"])


def test_laplace_of_a_general_model_is_the_autograd_hessian():
    obs = regression_data()
    start = infer.map(regression, obs, seed=1, num_restarts=1)
    gauss = infer.laplace(regression, obs, start)
    potential = TracedPotential(regression, obs)
    hessian = torch.autograd.functional.hessian(potential.flat, start.latent)
    torch.testing.assert_close(gauss.precision, 0.5 * (hessian + hessian.T))
    draws = gauss.sample(2000, seed=3)
    assert draws["sigma"].shape == (2000,) and draws["mean"].shape == (2000, len(X))
    low, high = interval_90(draws["sigma"])
    assert low < TRUTH["sigma"] < high


def test_traced_potential_equals_the_direct_one_for_an_inverse_problem():
    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    direct = potential_energy(problem, obs)
    traced = potential_energy(problem.model, obs)
    assert isinstance(direct, PotentialEnergy) and isinstance(traced, TracedPotential)
    assert traced.layout.shapes == direct.layout.shapes
    latent = torch.randn(direct.layout.dim, dtype=F64, requires_grad=True)
    a, b = direct.flat(latent), traced.flat(latent)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(*(torch.autograd.grad(e, latent)[0] for e in (a, b)))
    # a general-model MAP and Laplace of a linear-Gaussian model are the closed form
    mean, cov = exact_posterior(problem, obs)
    start = infer.map(problem.model, obs, num_restarts=1)
    torch.testing.assert_close(start.latent, mean, rtol=1e-6, atol=1e-6)
    gauss = infer.laplace(problem.model, obs, start)
    torch.testing.assert_close(gauss.cov, cov, rtol=1e-6, atol=1e-8)
    assert gauss.pde_solves is None and FIELD in start.sites


def noisy_problem(n_obs=40, sigma=0.3):
    """The linear toy with data simulated at noise ``sigma``, and its unknown-noise version."""
    fixed = make_problem(aux_dim=1, rec_dim=2, n_obs=n_obs, noise=sigma)
    obs = synthetic_obs(fixed, seed=5)
    unknown = InverseProblem(
        fixed.prior, fixed.forward, dist.HalfNormal(torch.tensor(1.0, dtype=F64))
    )
    return unknown, obs


def test_noise_site_potential_equals_the_traced_model():
    problem, obs = noisy_problem()
    assert problem.likelihood is None
    assert list(problem.latent_shapes)[-1] == NOISE_STD
    potential = PotentialEnergy(problem, obs)
    latent = torch.randn(potential.layout.dim, dtype=F64, requires_grad=True)
    a = potential.flat(latent)
    b = TracedPotential(problem.model, obs).flat(latent)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(*(torch.autograd.grad(e, latent)[0] for e in (a, b)))


def test_inverse_problem_with_unknown_noise_through_map_laplace_nuts_and_arviz():
    pytest.importorskip("arviz_base")
    from invprior.datatree import to_arviz

    problem, obs = noisy_problem()
    start = infer.map(problem, obs, seed=0, num_restarts=2)
    assert start.sites[NOISE_STD] == pytest.approx(0.3, rel=0.35)
    gauss = infer.laplace(problem, obs, start)
    # Gauss-Newton: the noise scale's entry is its expected Fisher information plus the
    # prior's curvature; the exact Hessian of the potential agrees at the mode within
    # the Gauss-Newton error (small for 40 observations)
    exact = torch.autograd.functional.hessian(PotentialEnergy(problem, obs).flat, start.latent)
    k = -1
    assert gauss.precision[k, k] == pytest.approx(float(exact[k, k]), rel=0.2)
    assert gauss.pde_solves == {"forward": 1, "adjoint": problem.n_obs}
    result = infer.nuts(problem, obs, init=start, seed=1, **NUTS_KW)
    # this noise draw sits low (MAP 0.23 for the true 0.3), so a 90% interval ends near
    # 0.3 and floating-point paths decide the side; the 99% interval must hold the truth,
    # and be far narrower than the HalfNormal(1) prior's
    low, high = np.quantile(np.asarray(result.samples[NOISE_STD]).ravel(), [0.005, 0.995])
    assert low < 0.3 < high and high - low < 0.25
    tree = to_arviz(result, problem, obs, num_prior_draws=20, warn=False)
    posterior = tree["posterior"]
    assert posterior[NOISE_STD].shape == (2, 300)
    assert "noise_std" not in tree["constant_data"]
    np.testing.assert_array_equal(posterior[NOISE_STD].values, result.samples[NOISE_STD])
    assert tree["log_likelihood"]["obs"].shape == (2, 300, problem.n_obs)


def test_models_that_cannot_be_sampled_are_rejected():
    def discrete(obs):
        k = pyro.sample("k", dist.Bernoulli(0.5))
        pyro.sample("y", dist.Normal(k, 1.0), obs=obs)

    with pytest.raises(ValueError, match=r"latent sites \['k'\] are discrete"):
        infer.map(discrete, torch.tensor(0.3))

    def nothing(obs):
        pyro.sample("y", dist.Normal(0.0, 1.0), obs=obs)

    with pytest.raises(ValueError, match="no latent sample site"):
        TracedPotential(nothing, torch.tensor(0.3))
