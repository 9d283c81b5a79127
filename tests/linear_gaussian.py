# SPDX-License-Identifier: MIT
"""A linear generator and a linear forward map whose posterior is Gaussian in closed form.

With Normal priors on the named variables, ``x = m + A_aux z_aux + A_rec z_rec``,
``z_aux = (u - mu_a) / s_a + tau e`` and ``y = B x + noise``, the latent
``w = (u, e, z_rec)`` (the packing order of ``LatentLayout``) has
``y = B c + B K w + noise`` with ``K = [A_aux / s_a, tau A_aux, A_rec]`` and
``c = m - A_aux mu_a / s_a``; the posterior is ``N(P^-1 (G^T W (y - Bc) + S0^-1 mu0), P^-1)``
with ``G = B K``, ``P = G^T W G + S0^-1``.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch

import invprior.bridge  # noqa: F401  (makes PDESolveError a divergence, as a real forward does)
from invprior import infer
from invprior.infer.mcmc import MCMCResult
from invprior.model import DisentangledPrior, InverseProblem
from invprior.pde.base import SolveCounter
from invprior.priors.base import Generator, GridSpec

GRID = GridSpec(shape=(3, 4), bbox=((0.0, 0.0), (1.0, 1.0)))


class LinearGenerator(Generator):
    """``x = m + A_aux z_aux + A_rec z_rec`` on a 3 x 4 grid."""

    def __init__(self, aux_dim: int, rec_dim: int, dtype: torch.dtype, seed: int = 1) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = GRID.shape[0] * GRID.shape[1]
        names = tuple(f"u{j}" for j in range(aux_dim))
        self._init_aux(
            names,
            ("m",) * aux_dim,
            {name: (-2.0, 3.0) for name in names},
            torch.linspace(0.2, 0.5, aux_dim, dtype=dtype),
            torch.linspace(1.5, 2.5, aux_dim, dtype=dtype),
        )
        self.rec_dim = rec_dim
        self.grid = GRID
        self.register_buffer("m", torch.randn(n, generator=g, dtype=dtype))
        self.register_buffer("a_aux", torch.randn(n, aux_dim, generator=g, dtype=dtype))
        self.register_buffer("a_rec", torch.randn(n, rec_dim, generator=g, dtype=dtype))

    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._refuse_eps(eps)
        x = self.m + z_aux @ self.a_aux.T + z_rec @ self.a_rec.T
        return x.reshape(*x.shape[:-1], *GRID.shape)


class _Apply(torch.autograd.Function):
    """``y = B x`` counting forward and adjoint applications like a PDE bridge."""

    @staticmethod
    def forward(ctx, field, op):  # noqa: ANN001, ANN205
        ctx.op = op
        op.counter.forward += field[..., 0, 0].numel()
        return field.reshape(*field.shape[:-2], -1) @ op.b.T.to(field)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        op = ctx.op
        op.counter.adjoint += grad[..., 0].numel()
        return (grad @ op.b.to(grad)).reshape(*grad.shape[:-1], *op.grid_shape), None


class LinearForward:
    """A linear observation map ``y = B vec(x)`` with ``n_obs`` rows and a solve counter."""

    def __init__(
        self, n_obs: int, dtype: torch.dtype, seed: int = 2, grid: GridSpec = GRID
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.b = torch.randn(n_obs, grid.shape[0] * grid.shape[1], generator=g, dtype=dtype)
        self.n_obs = n_obs
        self.grid_shape = grid.shape
        self.grid_bbox = grid.bbox
        self.counter = SolveCounter()
        self.batched_vjp = False  # one adjoint per cotangent, counted, like a PDE bridge

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        return _Apply.apply(field, self)


class FailingForward(LinearForward):
    """A linear forward map whose solve fails where the field's mean exceeds ``threshold``."""

    def __init__(self, error: type[Exception], threshold: float, n_obs: int = 5) -> None:
        super().__init__(n_obs, torch.float64)
        self.error = error
        self.threshold = threshold

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        if float(field.detach().reshape(-1, *GRID.shape).mean((-1, -2)).max()) > self.threshold:
            raise self.error("solver did not converge")
        return super().__call__(field)


class NaNForward(LinearForward):
    """A linear forward map that returns NaN where the field's mean exceeds ``threshold``."""

    def __init__(self, threshold: float, n_obs: int = 5) -> None:
        super().__init__(n_obs, torch.float64)
        self.threshold = threshold

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        out = super().__call__(field)
        inside = field.reshape(*out.shape[:-1], -1).mean(-1, keepdim=True) > self.threshold
        return torch.where(inside, torch.nan, out)


def make_problem(
    aux_dim: int = 2, rec_dim: int = 2, n_obs: int = 5, noise: float = 0.3, dtype=torch.float64
) -> InverseProblem:
    """A linear-Gaussian inverse problem with Normal priors on the named variables."""
    gen = LinearGenerator(aux_dim, rec_dim, dtype)
    aux_priors = {
        name: dist.Normal(torch.tensor(0.5 * j, dtype=dtype), torch.tensor(1.0 + j, dtype=dtype))
        for j, name in enumerate(gen.aux_names)
    }
    return InverseProblem(
        DisentangledPrior(gen, aux_priors, tau=0.3), LinearForward(n_obs, dtype), noise
    )


def synthetic_obs(problem: InverseProblem, seed: int = 3) -> torch.Tensor:
    """Data from a prior draw of the problem."""
    torch.manual_seed(seed)
    return problem.model().detach()


def short_nuts_run() -> tuple[InverseProblem, torch.Tensor, infer.MapResult, MCMCResult]:
    """A small problem (2 named, 2 residual), its data, its MAP and two short NUTS chains."""
    torch.manual_seed(0)
    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    result = infer.nuts(
        problem, obs, init=start, num_samples=15, warmup_steps=15, max_tree_depth=3,
        disable_progbar=True,
    )  # fmt: skip
    return problem, obs, start, result


def exact_posterior(
    problem: InverseProblem, obs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean ``(dim,)`` and covariance ``(dim, dim)`` of the packed latent."""
    prior = problem.prior
    gen = prior.generator
    scale = 1.0 / gen.aux_std
    k = torch.cat([gen.a_aux * scale, prior.tau * gen.a_aux, gen.a_rec], dim=1)
    c = gen.m - gen.a_aux @ (gen.aux_mean * scale)
    b = problem.forward.b
    g = b @ k
    w = problem.likelihood.fisher(obs)
    mu0 = torch.cat(
        [
            torch.stack([prior.aux_priors[n].loc for n in gen.aux_names])
            if gen.aux_names
            else obs.new_zeros(0),
            obs.new_zeros(gen.aux_dim + gen.rec_dim),
        ]
    )
    var0 = torch.cat(
        [
            torch.stack([prior.aux_priors[n].scale for n in gen.aux_names]) ** 2
            if gen.aux_names
            else obs.new_zeros(0),
            obs.new_ones(gen.aux_dim + gen.rec_dim),
        ]
    )
    precision = g.T @ w @ g + torch.diag(1.0 / var0)
    cov = torch.linalg.inv(precision)
    mean = cov @ (g.T @ (w @ (obs - b @ c)) + mu0 / var0)
    return mean, cov


def half_failing_problem(
    error: type[Exception],
) -> tuple[InverseProblem, torch.Tensor, torch.Tensor, FailingForward]:
    """A problem whose solve fails on about half of the posterior mass, by raising ``error``.

    Returns:
        ``(problem, obs, init, forward)``: ``init`` ``(2,)`` is a latent whose solve works,
        and every accepted draw must have a field mean at most ``forward.threshold``.
    """
    gen = LinearGenerator(0, 2, torch.float64)
    forward = FailingForward(error, threshold=0.0)
    problem = InverseProblem(gen, forward, 0.3)
    init = torch.tensor([-0.5, -0.5], dtype=torch.float64)
    field = gen.decode(init.new_zeros(0), init)
    obs = forward(field).detach()
    forward.threshold = float(field.mean())
    return problem, obs, init, forward
