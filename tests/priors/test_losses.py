# SPDX-License-Identifier: MIT
import pytest
import torch

from invprior.priors.losses import (
    correlation,
    explicitness_penalty,
    gaussian_kl,
    inter_independence,
    intra_independence,
)


@pytest.fixture
def factors(dtype):
    return torch.rand(4000, 3, dtype=dtype) * torch.tensor([1.0, 2.0, 0.5], dtype=dtype)


def test_correlation_matches_numpy(dtype):
    a, b = torch.randn(50, 2, dtype=dtype), torch.randn(50, 3, dtype=dtype)
    ref = torch.corrcoef(torch.cat([a, b], 1).T)[:2, 2:]
    torch.testing.assert_close(correlation(a, b), ref, atol=1e-6, rtol=1e-5)


def test_aligned_latents_score_zero(factors):
    u = factors
    mu_aux = 3.0 * u + 1.0  # increasing affine map of each variable
    mu_rec = torch.randn(len(u), 5, dtype=u.dtype)
    assert float(explicitness_penalty(u, mu_aux)) == pytest.approx(0.0, abs=1e-6)
    # independent variables: only sampling noise, about sqrt(2 / (pi n)) = 0.013
    assert float(intra_independence(u, mu_aux)) < 0.03
    assert float(inter_independence(u, mu_rec)) < 0.03


def test_shuffled_latents_are_penalised(factors):
    u = factors
    mu_aux = u[:, [1, 2, 0]]  # every variable carried by the wrong coordinate
    assert float(explicitness_penalty(u, mu_aux)) > 0.9
    assert float(intra_independence(u, mu_aux)) > 0.15
    leaky = torch.cat([u[:, :1] ** 2, torch.randn(len(u), 1, dtype=u.dtype)], 1)
    assert float(inter_independence(u, leaky)) > 0.1


def test_powers_detect_symmetric_dependence(dtype):
    u = torch.rand(5000, 1, dtype=dtype) * 2 - 1
    mu = u.abs()  # uncorrelated with u, but dependent
    assert abs(float(correlation(u, mu))) < 0.05
    assert float(inter_independence(u, mu, degree=1)) < 0.05
    assert float(inter_independence(u, mu, degree=3)) > 0.2


def test_flipped_axis_penalised(factors):
    assert float(explicitness_penalty(factors, -factors)) == pytest.approx(2.0, abs=1e-6)


def test_empty_blocks_give_zero(factors):
    assert float(inter_independence(factors, factors[:, :0])) == 0.0
    assert float(intra_independence(factors[:, :1], factors[:, :1])) == 0.0


def test_gaussian_kl_closed_form(dtype):
    mu = torch.tensor([[0.3, -1.0]], dtype=dtype)
    logvar = torch.log(torch.tensor([[0.5, 2.0]], dtype=dtype))
    m0 = torch.tensor([0.1, 0.0], dtype=dtype)
    v0 = torch.tensor([0.04, 1.0], dtype=dtype)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, logvar.mul(0.5).exp()),
        torch.distributions.Normal(m0, v0.sqrt()),
    ).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar, m0, v0), ref)
    assert float(gaussian_kl(m0[None], v0.log()[None], m0, v0)) == pytest.approx(0.0, abs=1e-12)


def test_input_checks():
    with pytest.raises(ValueError, match="at least 3 samples"):
        correlation(torch.zeros(2, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="same shape"):
        explicitness_penalty(torch.zeros(5, 2), torch.zeros(5, 3))
