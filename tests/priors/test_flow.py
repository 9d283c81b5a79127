# SPDX-License-Identifier: MIT
"""Flow matching and the ODE solvers: training on a toy Gaussian, orders, gradients."""

import numpy as np
import pytest
import torch
from torch import nn

from invprior.priors.flow import METHODS, flow_matching_loss, integrate, integrate_adaptive

MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[0.5, 0.3], [0.3, 1.0]], dtype=torch.float64)


class MLPVelocity(nn.Module):
    """``v(t, x; z)`` on vectors: an MLP of ``(x, t, z)``."""

    def __init__(self, dim: int, latent_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + 1 + latent_dim, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, dim),
        )

    def forward(self, t, x, z):
        t = t.expand(x.shape[:-1]).unsqueeze(-1)
        z = z.expand(*x.shape[:-1], z.shape[-1])
        return self.net(torch.cat([x, t, z], dim=-1))


def _toy_data(n, generator):
    chol = torch.linalg.cholesky(COV)
    return MEAN + torch.randn(n, 2, generator=generator, dtype=torch.float64) @ chol.T


def _train(velocity, num_steps, generator):
    opt = torch.optim.Adam(velocity.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, num_steps)
    losses = []
    for _ in range(num_steps):
        x = _toy_data(256, generator)
        loss = flow_matching_loss(velocity, x, x.new_zeros(256, 0), generator=generator)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    velocity = MLPVelocity(2, 0, 32).double()
    losses = _train(velocity, 600, torch.Generator().manual_seed(1))
    return velocity.eval().requires_grad_(False), losses


def test_loss_decreases_on_toy_gaussian(trained):
    _, losses = trained
    first, last = np.mean(losses[:20]), np.mean(losses[-50:])
    # The minimum is not 0: E||x - eps - v*||^2 > 0 for independent (x, eps) pairs.
    assert last < 0.6 * first


def test_trained_flow_maps_normal_to_target(trained):
    velocity, _ = trained
    eps = torch.randn(2000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = integrate(velocity, eps, eps.new_zeros(2000, 0), steps=32, method="heun")
    mean, cov = x.mean(0), torch.cov(x.T)
    # Monte Carlo error of the mean ~ 0.02, of the covariance entries ~ 0.03.
    torch.testing.assert_close(mean, MEAN, atol=0.1, rtol=0)
    torch.testing.assert_close(cov, COV, atol=0.15, rtol=0)


def test_loss_follows_the_path_definition():
    # For data all at c, v(t, x_t) = (c - x_t) / (1 - t) equals x - eps exactly on the path.
    c = torch.tensor([0.3, -0.7], dtype=torch.float64)

    def exact(t, x, z):
        return (c - x) / (1 - t.unsqueeze(-1))

    loss = flow_matching_loss(exact, c.expand(64, 2), torch.zeros(64, 0, dtype=torch.float64))
    assert loss.item() < 1e-20


def _linear_field():
    a = torch.tensor([[-0.5, 1.0], [-1.0, -0.3]], dtype=torch.float64)

    def velocity(t, x, z):
        return x @ a.T + z * (1 + t.unsqueeze(-1))

    return a, velocity


def test_adaptive_matches_exact_linear_flow():
    # x' = A x with z = 0 has the exact flow x(1) = expm(A) x(0).
    a, velocity = _linear_field()
    eps = torch.randn(5, 2, dtype=torch.float64)
    ref = integrate_adaptive(velocity, eps, eps.new_zeros(5, 2), rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(ref, eps @ torch.linalg.matrix_exp(a).T, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_fixed_step_order(method):
    _, velocity = _linear_field()
    eps = torch.randn(5, 2, dtype=torch.float64)
    z = torch.randn(5, 2, dtype=torch.float64)
    ref = integrate_adaptive(velocity, eps, z, rtol=1e-12, atol=1e-14)
    steps = np.array([8, 16, 32, 64])
    errors = [(integrate(velocity, eps, z, int(n), method) - ref).norm().item() for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - METHODS[method]) < 0.15, (method, errors, slope)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_gradcheck_through_solver(method):
    torch.manual_seed(3)
    velocity = MLPVelocity(2, 2, 5).double()
    eps = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    z = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e, c: integrate(velocity, e, c, 3, method), (eps, z))


def test_bad_arguments_are_refused():
    _, velocity = _linear_field()
    eps = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="method"):
        integrate(velocity, eps, eps, 4, "rk4")
    with pytest.raises(ValueError, match="steps"):
        integrate(velocity, eps, eps, 0)
    with pytest.raises(ValueError, match="z of shape"):
        flow_matching_loss(velocity, eps, eps[0])
