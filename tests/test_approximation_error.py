# SPDX-License-Identifier: MIT
"""The approximation-error model: moments, enhanced likelihood, conditional field draws."""

import numpy as np
import pytest
import torch
from linear_gaussian import GRID, LinearForward, LinearGenerator

from invprior.approximation_error import ApproximationError
from invprior.likelihood import CorrelatedGaussianLikelihood, GaussianLikelihood


class ProjectingGenerator(LinearGenerator):
    """A linear generator whose encoder is the least-squares projection onto its range."""

    def encode(self, x):  # noqa: D102
        basis = torch.cat([self.a_aux, self.a_rec], dim=1)
        flat = x.reshape(*x.shape[:-2], -1) - self.m
        mu = torch.linalg.lstsq(basis, flat.T).solution.T
        return mu, torch.zeros_like(mu)


def _fields(n, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *GRID.shape, generator=g, dtype=torch.float64)


def test_estimate_matches_the_projection_residuals():
    gen = ProjectingGenerator(1, 2, torch.float64)
    forward = LinearForward(4, torch.float64)
    x = _fields(40)
    approx = ApproximationError.estimate(gen, x, forward, batch_size=16)
    basis = torch.cat([gen.a_aux, gen.a_rec], dim=1)
    proj = basis @ torch.linalg.pinv(basis)
    err = (x.reshape(40, -1) - gen.m) @ (torch.eye(12, dtype=torch.float64) - proj).T
    torch.testing.assert_close(approx.field_mean.reshape(-1), err.mean(0))
    torch.testing.assert_close(approx.field_dev.T @ approx.field_dev, torch.cov(err.T))
    obs_err = err @ forward.b.T
    torch.testing.assert_close(approx.obs_mean, obs_err.mean(0))
    torch.testing.assert_close(approx.obs_cov, torch.cov(obs_err.T))


class OffsetEncoder(ProjectingGenerator):
    """The projecting encoder with a bias: an amortisation gap for refinement to remove."""

    def encode(self, x):  # noqa: D102
        mu, logvar = super().encode(x)
        return mu + 0.3, logvar


def test_refinement_removes_the_encoder_gap():
    forward = LinearForward(4, torch.float64)
    x = _fields(30)
    exact = ApproximationError.estimate(ProjectingGenerator(1, 2, torch.float64), x, forward)
    biased = OffsetEncoder(1, 2, torch.float64)
    coarse = ApproximationError.estimate(biased, x, forward)
    refined = ApproximationError.estimate(biased, x, forward, batch_size=16, refine_steps=20)
    gap = (coarse.field_mean - exact.field_mean).abs().max()
    assert gap > 0.1
    torch.testing.assert_close(refined.field_mean, exact.field_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(refined.obs_cov, exact.obs_cov, atol=1e-5, rtol=0)


def test_likelihood_adds_the_error_to_the_noise():
    gen = ProjectingGenerator(1, 2, torch.float64)
    approx = ApproximationError.estimate(gen, _fields(30), LinearForward(4, torch.float64))
    lik = approx.likelihood(0.1)
    assert isinstance(lik, CorrelatedGaussianLikelihood)
    torch.testing.assert_close(lik.cov, 0.01 * torch.eye(4, dtype=torch.float64) + approx.obs_cov)
    pred = torch.zeros(4, dtype=torch.float64)
    torch.testing.assert_close(lik.distribution(pred).mean, approx.obs_mean)
    torch.testing.assert_close(lik.fisher(pred), torch.linalg.inv(lik.cov))
    assert float(lik.noise_std) == pytest.approx(0.1)


def test_std_over_noise_is_the_error_std_per_observation_over_the_noise_std():
    dev = torch.tensor([[3.0, 0.0], [4.0, 1.0]], dtype=torch.float64)  # error stds 5 and 1
    approx = ApproximationError(
        field_mean=torch.zeros(1, 1, dtype=torch.float64),
        field_dev=torch.zeros(2, 1, dtype=torch.float64),
        obs_mean=torch.zeros(2, dtype=torch.float64),
        obs_dev=dev,
    )
    torch.testing.assert_close(approx.std_over_noise(2.0), torch.tensor([2.5, 0.5]).double())
    torch.testing.assert_close(
        approx.std_over_noise(torch.tensor([5.0, 0.5])), torch.tensor([1.0, 2.0]).double()
    )
    with pytest.raises(ValueError, match="positive"):
        approx.std_over_noise(0.0)


def test_conditional_draws_have_the_gaussian_conditional_moments():
    g = torch.Generator().manual_seed(0)
    n, p, n_obs, std = 30, 12, 4, 0.2
    field_dev = torch.randn(n, p, generator=g, dtype=torch.float64) / np.sqrt(n - 1)
    obs_dev = field_dev @ torch.randn(p, n_obs, generator=g, dtype=torch.float64)
    approx = ApproximationError(
        field_mean=torch.linspace(-1, 1, p, dtype=torch.float64).reshape(GRID.shape),
        field_dev=field_dev,
        obs_mean=torch.linspace(0, 1, n_obs, dtype=torch.float64),
        obs_dev=obs_dev,
    )
    r = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)
    draws = approx.conditional_draws(r.expand(40000, n_obs), std, seed=1).reshape(40000, p)
    s = std**2 * torch.eye(n_obs, dtype=torch.float64) + obs_dev.T @ obs_dev
    c_ex = field_dev.T @ obs_dev
    mean = approx.field_mean.reshape(-1) + c_ex @ torch.linalg.solve(s, r - approx.obs_mean)
    cov = field_dev.T @ field_dev - c_ex @ torch.linalg.solve(s, c_ex.T)
    sd = cov.diagonal().sqrt()
    assert ((draws.mean(0) - mean).abs() / sd).max() < 4 / np.sqrt(40000) * 1.5
    torch.testing.assert_close(torch.cov(draws.T), cov, atol=0.03 * float(sd.max()) ** 2, rtol=0)
    again = approx.conditional_draws(r.expand(40000, n_obs), std, seed=1)
    torch.testing.assert_close(again.reshape(40000, p), draws, rtol=0, atol=0)


def test_bad_input_is_refused():
    gen = ProjectingGenerator(1, 2, torch.float64)
    forward = LinearForward(4, torch.float64)
    with pytest.raises(TypeError, match="no encoder"):
        ApproximationError.estimate(LinearGenerator(1, 2, torch.float64), _fields(5), forward)
    with pytest.raises(ValueError, match="shape"):
        ApproximationError.estimate(gen, torch.zeros(5, 4, 4, dtype=torch.float64), forward)
    bad = _fields(5)
    bad[2, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ApproximationError.estimate(gen, bad, forward)
    approx = ApproximationError.estimate(gen, _fields(5), forward)
    with pytest.raises(ValueError, match="positive"):
        approx.likelihood(0.0)
    with pytest.raises(ValueError, match="residual"):
        approx.conditional_draws(torch.zeros(3, 5, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="positive definite"):
        CorrelatedGaussianLikelihood(-torch.eye(2, dtype=torch.float64))


def test_log_prob_formulas_equal_the_distributions():
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(3, 4, generator=g, dtype=torch.float64)
    obs = torch.randn(4, generator=g, dtype=torch.float64)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    offset = torch.randn(4, generator=g, dtype=torch.float64)
    for lik in (
        CorrelatedGaussianLikelihood(a @ a.T + torch.eye(4, dtype=torch.float64), offset),
        GaussianLikelihood(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)),
        GaussianLikelihood(0.3),
    ):
        torch.testing.assert_close(
            lik.log_prob(pred, obs), lik.distribution(pred).log_prob(obs), rtol=1e-12, atol=1e-12
        )
