# SPDX-License-Identifier: MIT
r"""Many chains as one batch: jittered HMC with ChEES trajectory adaptation [1].

All chains move together. At every iteration each chain draws a fresh momentum and takes
the same number of leapfrog steps, so one leapfrog step is one batched evaluation of the
potential (:meth:`invprior.potential.Potential.batch`): the generator decodes every
chain's field at once and the forward model maps them at once (the dense observation map
as one matrix product). No chain waits for another's tree to finish, as NUTS chains
would in a batch.

**Coordinates.** The chains move in :math:`y` with :math:`\zeta = m + S y`, where
:math:`m` is the first start (the MAP) and :math:`S` the Cholesky factor of the Laplace
covariance there (``init_mass="laplace"``; the identity with ``"identity"``), kept as a
low-rank-plus-diagonal factor when there are fewer observations than coordinates. For a
linear-Gaussian problem :math:`y` is exactly standard normal under the posterior,
whatever its dimension, so no mass matrix has to be learnt from a few draws in thousands
of dimensions. On top of :math:`S` an inverse mass matrix in :math:`y` is estimated
during warm-up from the positions of all chains (``adapt_mass``), in windows ending at
20%, 40% and 70% of warm-up: dense with ``full_mass`` (by default for at most
``max_dense_dim`` coordinates, where many chains give a usable dense estimate within a
window), diagonal otherwise; ``adapt_mass=False`` keeps :math:`S` alone. A DL-CFM latent
(a flow's noise site ``eps`` of thousands of coordinates beside a few named and residual
ones) gets a block: dense over the coordinates of every other site when they are at most
``max_dense_dim``, diagonal over the noise. The named block is where the posterior is
narrow, curved and correlated (the amplitude-width ridge) and the Laplace factor at the
MAP fits it worst; the noise is close to its standard-normal prior.

**Adaptation** (warm-up only, shared by all chains, from statistics of all chains):

- the step size :math:`\epsilon` by dual averaging [2] on the harmonic mean of the
  chains' acceptance probabilities (a chain that nearly always rejects pulls it down,
  unlike the arithmetic mean; a divergent transition counts as acceptance 0), towards
  ``target_accept_prob``;
- the trajectory length :math:`T` by Adam on the gradient of the ChEES criterion
  :math:`\tfrac14 E[(\|y' - E y'\|^2 - \|y - E y\|^2)^2]` (the change in the estimate
  of the expected squared distance from the centre, large when a transition decorrelates
  the second moments), estimated per chain as
  :math:`t\,(\|y' - \bar y'\|^2 - \|y - \bar y\|^2)\,(y' - \bar y')\cdot v'` with
  :math:`v'` the velocity at the proposal, and averaged with the acceptance
  probabilities as weights [1].

The leapfrog steps of iteration :math:`i` are :math:`\lceil h_i T / \epsilon \rceil`
(at most ``max_leapfrog_steps``), with :math:`h_i \in (0, 1)` the :math:`i`-th point of
the base-2 Halton sequence: jittered lengths avoid the periodic orbits of a fixed one,
and the quasi-random sequence covers :math:`(0, 1)` evenly. After warm-up :math:`\epsilon`
and :math:`T` are their averaged iterates.

**Seeding.** Chain :math:`c` draws its start, momenta and acceptance decisions from its own
generator seeded with the :math:`c`-th of ``child_seeds(seed, num_chains)``; the jitter is
deterministic. Its start is :math:`m + S \xi_c` with :math:`\xi_c \sim N(0, I)`: a draw
from the Laplace approximation, dispersed enough for R-hat to see chains that have not
met (:math:`m` itself where the potential is not finite there). Same seed, same chains.

**Divergences.** A chain whose potential becomes non-finite (a PDE solver failure
included) stops moving for the rest of the trajectory, and a transition whose energy
error exceeds ``1000`` is divergent; both are rejected and recorded as ``diverging``.

References:
    [1] M. D. Hoffman, A. Radul, P. Sountsov, "An Adaptive-MCMC Scheme for Setting
        Trajectory Lengths in Hamiltonian Monte Carlo", AISTATS 2021,
        https://proceedings.mlr.press/v130/hoffman21a.html
    [2] M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014),
        https://arxiv.org/abs/1111.4246
    [3] Stan Development Team, "Stan Reference Manual", HMC algorithm parameters
        (regularised diagonal metric estimate).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from pyro.infer.mcmc.logger import ProgressBar
from pyro.ops.dual_averaging import DualAveraging

from ..model import InverseProblem
from ..potential import Potential, PotentialEnergy, is_pde_failure, potential_energy
from ..sites import EPS
from ..validation import InputError
from .checkpoint import SamplingCheckpoint
from .common import child_seeds, is_root, solve_counts, solves_since
from .hessian import GaussNewtonHessian, LowRankCovarianceFactor
from .laplace_approximation import laplace
from .map_estimate import MapResult
from .mcmc import MCMCConfig, MCMCResult, initial_latents, site_draws

__all__ = ["chees"]

#: Energy error beyond which a transition is divergent (Pyro's and Stan's threshold).
MAX_ENERGY_ERROR = 1000.0
#: Adam's learning rate for the log trajectory length, and its largest update [1].
TRAJECTORY_LEARNING_RATE = 0.025
MAX_LOG_UPDATE = 0.35
#: Ends of the mass adaptation windows, as fractions of warm-up.
MASS_WINDOWS = (0.2, 0.4, 0.7)
#: Initial trajectory length in the preconditioned coordinates (posterior scale about 1).
INITIAL_TRAJECTORY = 1.0


def halton(index: int) -> float:
    """The ``index``-th point (from 0) of the base-2 Halton (van der Corput) sequence, in (0, 1).

    Example:
        >>> [halton(i) for i in range(4)]
        [0.5, 0.25, 0.75, 0.125]
    """
    n, value, scale = index + 1, 0.0, 0.5
    while n:
        value += scale * (n & 1)
        n >>= 1
        scale *= 0.5
    return value


class _Preconditioned:
    r"""The potential of :math:`y` with :math:`\zeta = m + S y`.

    ``S`` is ``(dim,)`` (a diagonal), ``(dim, dim)`` or a
    :class:`~invprior.infer.hessian.LowRankCovarianceFactor`.
    """

    def __init__(
        self,
        potential: Potential,
        centre: torch.Tensor,
        factor: torch.Tensor | LowRankCovarianceFactor,
    ) -> None:
        self.potential = potential
        self.centre = centre
        self.factor = factor

    def latent(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\zeta` of ``y``, both ``(num, dim)``."""
        if isinstance(self.factor, LowRankCovarianceFactor):
            return self.centre + self.factor(y)
        if self.factor.dim() == 1:
            return self.centre + y * self.factor
        return self.centre + y @ self.factor.T

    def energy_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`U` ``(num,)`` and its gradient in ``y`` ``(num, dim)``; non-finite is ``inf``.

        A PDE solver failure in the batch is retried chain by chain, so only the chains
        whose solve fails get an infinite energy (and a zero gradient).
        """
        try:
            energy, grad = self._evaluate(y, self.potential.batch)
        except Exception as err:
            if not is_pde_failure(err):
                raise
            rows = [self._row(row) for row in y]
            energy = torch.stack([e for e, _ in rows])
            grad = torch.stack([g for _, g in rows])
        bad = ~torch.isfinite(energy) | ~torch.isfinite(grad).all(-1)
        energy = torch.where(bad, math.inf, energy)
        return energy, torch.where(bad.unsqueeze(-1), 0.0, grad)

    def _evaluate(
        self, y: torch.Tensor, energy_of: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y = y.detach().requires_grad_(True)
        energy = energy_of(self.latent(y))
        (grad,) = torch.autograd.grad(energy.sum(), y)
        return energy.detach(), grad

    def _row(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chain's energy and gradient; ``inf`` and zeros where its solve fails."""
        try:
            energy, grad = self._evaluate(y.unsqueeze(0), self.potential.batch)
        except Exception as err:
            if not is_pde_failure(err):
                raise
            return y.new_tensor(math.inf), torch.zeros_like(y)
        return energy[0], grad[0]


class _TrajectoryAdam:
    r"""Adam ascent on :math:`\log T` with clipped updates and a Polyak average [1]."""

    def __init__(self, length: float) -> None:
        self.log_length = math.log(length)
        self.log_average = self.log_length
        self._m = self._v = 0.0
        self._t = 0

    def step(self, gradient: float) -> None:
        r"""One ascent step along ``gradient`` (of the criterion in :math:`\log T`)."""
        beta1, beta2 = 0.9, 0.999
        self._t += 1
        self._m = beta1 * self._m + (1 - beta1) * gradient
        self._v = beta2 * self._v + (1 - beta2) * gradient**2
        m_hat, v_hat = self._m / (1 - beta1**self._t), self._v / (1 - beta2**self._t)
        update = TRAJECTORY_LEARNING_RATE * m_hat / (math.sqrt(v_hat) + 1e-8)
        self.log_length += min(max(update, -MAX_LOG_UPDATE), MAX_LOG_UPDATE)
        weight = self._t**-0.5
        self.log_average = (1 - weight) * self.log_average + weight * self.log_length


def _chees_gradient(
    y0: torch.Tensor,
    y1: torch.Tensor,
    v1: torch.Tensor,
    accept: torch.Tensor,
    diverging: torch.Tensor,
    jittered_length: float,
) -> float:
    r"""The acceptance-weighted ChEES gradient in :math:`\log T` over the chains [1]."""
    weight = torch.where(diverging, 0.0, accept)
    if float(weight.sum()) <= 0.0:
        return 0.0
    ok = ~diverging
    proposal_mean = (weight.unsqueeze(-1) * y1).sum(0) / weight.sum()
    start_mean = y0.mean(0)  # every start is a valid position
    c1, c0 = y1 - proposal_mean, y0 - start_mean
    change = c1.square().sum(-1) - c0.square().sum(-1)
    per_chain = jittered_length * change * (c1 * v1).sum(-1)
    per_chain = torch.where(ok, per_chain, 0.0)
    return float((weight * per_chain).sum() / weight.sum())


class _InverseMass:
    r"""An inverse mass matrix: dense over the coordinates ``block``, diagonal elsewhere.

    Attributes:
        diagonal: The diagonal, shape ``(dim,)`` (its entries in ``block`` unused).
        block: Indices of the dense block, shape ``(k,)``, or None (diagonal only).
        dense: The dense block, shape ``(k, k)``, or None.
    """

    def __init__(
        self, diagonal: torch.Tensor, block: torch.Tensor | None, dense: torch.Tensor | None
    ) -> None:
        self.diagonal, self.block, self.dense = diagonal, block, dense
        self._factor = torch.linalg.cholesky(dense) if dense is not None else None

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        """:math:`M^{-1} p` for momenta ``(num_chains, dim)``."""
        if self.dense is None:
            return self.diagonal * p
        if len(self.block) == p.shape[-1]:
            return p @ self.dense
        v = self.diagonal * p
        v[:, self.block] = p[:, self.block] @ self.dense
        return v

    def momentum(self, xi: torch.Tensor) -> torch.Tensor:
        r""":math:`p \sim N(0, M)` from standard normal ``xi`` ``(num_chains, dim)``."""
        if self._factor is None:
            return xi / self.diagonal.sqrt()
        dense = torch.linalg.solve_triangular(self._factor.T, xi[:, self.block].T, upper=True).T
        if len(self.block) == xi.shape[-1]:
            return dense
        p = xi / self.diagonal.sqrt()
        p[:, self.block] = dense
        return p


def _dense_block(potential: Potential, config: MCMCConfig) -> torch.Tensor | None:
    """The coordinates whose inverse mass is adapted as a dense block; None for a diagonal.

    ``full_mass`` True or False decides for all coordinates. Left at None: all of them up
    to ``max_dense_dim`` coordinates; beyond that, for a latent with a flow's noise site,
    the coordinates of every other site when they are at most ``max_dense_dim``.
    """
    dim = potential.layout.dim
    every = torch.arange(dim)
    if config.full_mass is not None:
        return every if config.full_mass else None
    if dim <= config.max_dense_dim:
        return every
    sizes = potential.layout.sizes
    if EPS not in sizes or not 0 < dim - sizes[EPS] <= config.max_dense_dim:
        return None
    offsets = np.cumsum([0, *sizes.values()])
    spans = [
        torch.arange(int(offsets[i]), int(offsets[i + 1]))
        for i, name in enumerate(sizes)
        if name != EPS
    ]
    return torch.cat(spans)


class _WindowMoments:
    """Mean and covariance (dense over a block, else diagonal) of the chains in one window."""

    def __init__(self, block: torch.Tensor | None) -> None:
        self.block = block
        self.count = 0
        self.total: torch.Tensor | float = 0.0
        self.squares: torch.Tensor | float = 0.0
        self.products: torch.Tensor | float = 0.0

    def add(self, y: torch.Tensor) -> None:
        """Add the positions ``(num_chains, dim)`` of one iteration."""
        self.count += y.shape[0]
        self.total = self.total + y.sum(0)
        self.squares = self.squares + y.square().sum(0)
        if self.block is not None:
            inner = y[:, self.block]
            self.products = self.products + inner.T @ inner

    def inverse_mass(self) -> _InverseMass:
        """Stan's regularised estimate [3]: shrunk towards ``1e-3`` times the identity."""
        n, mean = self.count, self.total / self.count
        variance = (self.squares - n * mean.square()) / max(n - 1, 1)
        diagonal = (n / (n + 5.0)) * variance + 1e-3 * (5.0 / (n + 5.0))
        if self.block is None:
            return _InverseMass(diagonal, None, None)
        inner = mean[self.block]
        cov = (self.products - n * torch.outer(inner, inner)) / max(n - 1, 1)
        shrink = 1e-3 * (5.0 / (n + 5.0)) * torch.eye(len(inner)).to(cov)
        return _InverseMass(diagonal, self.block, (n / (n + 5.0)) * cov + shrink)


def _preconditioner(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    potential: Potential,
    centre: torch.Tensor,
    config: MCMCConfig,
) -> torch.Tensor | LowRankCovarianceFactor:
    """The preconditioner ``S``: a square root of the Laplace covariance at ``centre``.

    For an inverse problem with fewer observations than latent coordinates the
    Gauss-Newton covariance's low-rank-plus-diagonal factor (no ``dim x dim`` matrix);
    otherwise the Cholesky factor of :func:`~invprior.infer.laplace`'s covariance. Ones
    (the identity) for ``init_mass="identity"`` or where the Laplace approximation fails.
    """
    ones = torch.ones_like(centre)
    if config.init_mass != "laplace":
        return ones
    if isinstance(potential, PotentialEnergy) and potential.problem.n_obs < len(centre):
        batched = potential.forward.batched_vjp
        factor = GaussNewtonHessian.at(potential, centre, batched).covariance_factor()
        if factor is not None:
            return factor
    try:
        cov = laplace(problem, obs, centre).cov
    except ValueError as err:
        warnings.warn(
            f"ChEES runs without the Laplace preconditioner: {err}", RuntimeWarning, stacklevel=3
        )
        return ones
    return torch.linalg.cholesky(cov)


class _Sampler:
    """The state of all chains and of the shared adaptation.

    Args:
        target: The preconditioned potential.
        config: The sampler settings.
        generators: One random generator per chain.
        y: Start of every chain, ``(num_chains, dim)``.
        block: Coordinates of the dense block of the adapted inverse mass (all of them
            for a dense one), or None for a diagonal (:func:`_dense_block`).
    """

    def __init__(
        self,
        target: _Preconditioned,
        config: MCMCConfig,
        generators: list[torch.Generator],
        y: torch.Tensor,
        block: torch.Tensor | None,
    ) -> None:
        self.target = target
        self.config = config
        self.generators = generators
        self.block = block.to(y.device) if block is not None else None
        self.step_size = config.step_size
        energy, grad = target.energy_and_grad(y)
        failed = ~torch.isfinite(energy)
        if bool(failed.any()):  # such a chain starts at the centre instead
            y = torch.where(failed.unsqueeze(-1), 0.0, y)
            energy, grad = target.energy_and_grad(y)
            if not bool(torch.isfinite(energy).all()):
                raise ValueError(
                    "the potential is not finite at the chains' start (a failed solve or a "
                    "point outside the prior's support); start from the MAP of this problem"
                )
        self.y, self.energy, self.grad = y, energy, grad
        self.set_inverse_mass(_InverseMass(torch.ones_like(y[0]), None, None))
        self.trajectory = _TrajectoryAdam(max(INITIAL_TRAJECTORY, config.step_size))

    def _restart_step_size(self) -> None:
        self.dual = DualAveraging(prox_center=math.log(10 * self.step_size))
        self.dual_steps = 0

    def _normal(self) -> torch.Tensor:
        """One standard normal vector per chain, each from its chain's generator."""
        dim, like = self.y.shape[-1], self.y
        return torch.stack(
            [torch.randn(dim, generator=g, dtype=like.dtype, device=like.device)
             for g in self.generators]
        )  # fmt: skip

    def _uniform(self) -> torch.Tensor:
        like = self.y
        return torch.stack(
            [torch.rand((), generator=g, dtype=like.dtype, device=like.device)
             for g in self.generators]
        )  # fmt: skip

    def _velocity(self, p: torch.Tensor) -> torch.Tensor:
        """:math:`M^{-1} p` for momenta ``(num_chains, dim)``."""
        return self.inverse_mass.velocity(p)

    def _kinetic(self, p: torch.Tensor) -> torch.Tensor:
        return 0.5 * (p * self._velocity(p)).sum(-1)

    def _momentum(self) -> torch.Tensor:
        r"""Fresh momenta :math:`p \sim N(0, M)`, one per chain."""
        return self.inverse_mass.momentum(self._normal())

    def transition(self, index: int, length: float) -> dict[str, torch.Tensor | int]:
        """One jittered HMC transition of every chain with trajectory length ``length``."""
        eps = self.step_size
        jitter = halton(index)
        num_steps = max(1, min(math.ceil(jitter * length / eps), self.config.max_leapfrog_steps))
        p0 = self._momentum()
        start_energy = self.energy + self._kinetic(p0)
        y, p, grad, energy = self.y, p0 - 0.5 * eps * self.grad, self.grad, self.energy
        moving = torch.isfinite(energy)
        for step in range(num_steps):
            y = torch.where(moving.unsqueeze(-1), y + eps * self._velocity(p), y)
            energy, grad = self.target.energy_and_grad(y)
            moving = moving & torch.isfinite(energy)
            kick = eps if step + 1 < num_steps else 0.5 * eps
            p = torch.where(moving.unsqueeze(-1), p - kick * grad, p)
        end_energy = energy + self._kinetic(p)
        error = end_energy - start_energy
        diverging = ~moving | ~(error < MAX_ENERGY_ERROR)
        log_accept = torch.where(diverging, -math.inf, -error).clamp(max=0.0)
        accept_prob = log_accept.exp()
        accepted = self._uniform().log() < log_accept
        y0 = self.y
        self.y = torch.where(accepted.unsqueeze(-1), y, self.y)
        self.energy = torch.where(accepted, energy, self.energy)
        self.grad = torch.where(accepted.unsqueeze(-1), grad, self.grad)
        return {
            "y0": y0,
            "proposal": y,
            "velocity": self._velocity(p),
            "accept_prob": accept_prob,
            "diverging": diverging,
            "energy": start_energy,
            "num_steps": num_steps,
            "jitter": jitter,
        }

    def adapt(self, step: dict[str, torch.Tensor | int], length: float) -> None:
        """Update the step size and trajectory length from one transition of all chains."""
        accept, diverging = step["accept_prob"], step["diverging"]
        # a divergent transition counts with acceptance 0, like a nearly divergent one
        harmonic = float(1.0 / (1.0 / accept.clamp(min=1e-10)).mean())
        self.dual.step(self.config.target_accept_prob - harmonic)
        self.dual_steps += 1
        log_step, _ = self.dual.get_state()
        self.step_size = math.exp(log_step)
        gradient = _chees_gradient(
            step["y0"], step["proposal"], step["velocity"], accept, diverging,
            step["jitter"] * length,
        )  # fmt: skip
        self.trajectory.step(gradient)

    def trajectory_length(self, averaged: bool) -> float:
        """The current (or averaged) trajectory length, between one and the most steps."""
        log_length = self.trajectory.log_average if averaged else self.trajectory.log_length
        longest = self.config.max_leapfrog_steps * self.step_size
        return min(max(math.exp(log_length), self.step_size), longest)

    def set_inverse_mass(self, inverse_mass: _InverseMass) -> None:
        """A new inverse mass; step size adaptation starts again from the current step size."""
        self.inverse_mass = inverse_mass
        self._restart_step_size()

    def finish_warmup(self) -> None:
        """Fix the step size and trajectory length at their averaged iterates.

        Without a step of dual averaging since its last restart (no warm-up, or a mass
        window that closed on the last warm-up iteration) the step size stays as it is.
        """
        if not self.dual_steps:  # dual averaging has no iterate before its first step
            return
        _, log_average = self.dual.get_state()
        self.step_size = math.exp(log_average)


def chees(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    *,
    init: MapResult | torch.Tensor | None = None,
    seed: int = 0,
    config: MCMCConfig | None = None,
    chains: Sequence[int] | None = None,
    checkpoint: SamplingCheckpoint | None = None,
    **kwargs: object,
) -> MCMCResult:
    """Sample the posterior with ChEES-HMC, all chains in one batch [1].

    Arguments as for :func:`invprior.infer.nuts` (``max_tree_depth`` and ``num_steps`` are
    not used; ``max_leapfrog_steps`` caps a trajectory). The chains adapt together, so they
    always run together: ``chains`` must be None or all of them, and under MPI each rank
    group runs the whole batch.

    Returns:
        An :class:`MCMCResult` with ``kernel="ChEES"``. Per chain ``wall_s``,
        ``num_evals`` and ``pde_solves`` are the batch's shared equally.

    Raises:
        ValueError: If ``chains`` is a strict subset, or the initial latent does not fit.
        InputError: If ``checkpoint`` asks to resume (ChEES runs are not checkpointed).

    Example:
        >>> result = chees(problem, obs, num_chains=16, num_samples=200)  # doctest: +SKIP
        >>> result.samples["z_rec"].shape  # doctest: +SKIP
        torch.Size([16, 200, 8])
    """
    config = config if config is not None else MCMCConfig(**kwargs)
    if chains is not None and sorted(int(c) for c in chains) != list(range(config.num_chains)):
        raise ValueError(
            f"ChEES adapts all {config.num_chains} chains together and runs them as one "
            f"batch; pass chains=None (got {list(chains)})"
        )
    if checkpoint is not None and checkpoint.resume:
        raise InputError(
            "kernel 'chees' does not checkpoint its chains, so there is nothing to resume; "
            "rerun without --resume, or use kernel = 'nuts'"
        )
    potential = potential_energy(problem, obs)
    dim = potential.layout.dim
    centre = initial_latents(problem, obs, init, 1, seed)[0].to(potential.obs)
    if centre.shape[-1] != dim:
        raise ValueError(
            f"initial latent has {centre.shape[-1]} coordinates but the problem has {dim}; "
            f"pass the MAP of this problem or a latent of that size"
        )
    before, tic = solve_counts(potential.forward), time.perf_counter()
    target = _Preconditioned(
        potential, centre, _preconditioner(problem, obs, potential, centre, config)
    )
    device = centre.device
    generators = [
        torch.Generator(device=device).manual_seed(s) for s in child_seeds(seed, config.num_chains)
    ]
    start = torch.stack(
        [torch.randn(dim, generator=g, dtype=centre.dtype, device=device) for g in generators]
    )
    sampler = _Sampler(target, config, generators, start, _dense_block(potential, config))
    draws, stats = _run(sampler, config)
    wall = time.perf_counter() - tic
    latent = target.latent(torch.stack(draws, 1).flatten(0, 1)).reshape(
        config.num_chains, config.num_samples, dim
    )
    solves = solves_since(before, potential.forward)
    chain_stats = [
        {
            "chain": c,
            "wall_s": wall / config.num_chains,
            "pde_solves": _share(solves, c, config.num_chains),
            "num_evals": _share({"n": potential.num_evals}, c, config.num_chains)["n"],
            "num_divergences": int(stats["diverging"][c].sum()),
            "step_size": sampler.step_size,
        }
        for c in range(config.num_chains)
    ]
    return MCMCResult(
        samples=site_draws(potential, latent, config.store_field),
        latent=latent,
        sample_stats=stats,
        chain_stats=chain_stats,
        config=config,
        kernel="ChEES",
    )


def _share(counts: dict[str, int] | None, chain: int, num_chains: int) -> dict[str, int] | None:
    """Chain ``chain``'s share of the batch's counts (the remainder to the first chains)."""
    if counts is None:
        return None
    return {key: n // num_chains + (chain < n % num_chains) for key, n in counts.items()}


def _run(sampler: _Sampler, config: MCMCConfig) -> tuple[list[torch.Tensor], dict]:
    """Warm-up and sampling; the draws ``(chain, dim)`` in ``y`` and per-draw statistics."""
    warmup, num_samples, num_chains = config.warmup_steps, config.num_samples, config.num_chains
    windows = sorted({round(f * warmup) for f in MASS_WINDOWS} - {0}) if config.adapt_mass else []
    moments = _WindowMoments(sampler.block)
    floats = ("step_size", "accept_prob", "energy", "lp")
    stats = {key: np.zeros((num_chains, num_samples)) for key in floats}
    stats["n_steps"] = np.zeros((num_chains, num_samples), dtype=np.int64)
    stats["diverging"] = np.zeros((num_chains, num_samples), dtype=bool)
    draws: list[torch.Tensor] = []
    progress = ProgressBar(warmup, num_samples, disable=config.disable_progbar or not is_root())
    try:
        for i in range(warmup + num_samples):
            warm = i < warmup
            if i == warmup:
                sampler.finish_warmup()
            length = sampler.trajectory_length(averaged=not warm)
            step = sampler.transition(i, length)
            if warm:
                sampler.adapt(step, length)
                if windows:
                    moments.add(sampler.y)
                if windows and i + 1 == windows[0]:
                    windows.pop(0)
                    sampler.set_inverse_mass(moments.inverse_mass())
                    moments = _WindowMoments(sampler.block)
            else:
                k = i - warmup
                draws.append(sampler.y.detach().clone())
                stats["step_size"][:, k] = sampler.step_size
                stats["n_steps"][:, k] = step["num_steps"]
                stats["accept_prob"][:, k] = step["accept_prob"].cpu().numpy()
                stats["energy"][:, k] = step["energy"].cpu().numpy()
                stats["lp"][:, k] = (-sampler.energy).cpu().numpy()
                stats["diverging"][:, k] = step["diverging"].cpu().numpy()
            progress.set_description("Warmup" if warm else "Sample", refresh=False)
            progress.set_postfix(
                {"step size": f"{sampler.step_size:.2e}", "steps": step["num_steps"],
                 "acc. prob": f"{float(step['accept_prob'].mean()):.2f}"},
                refresh=False,
            )  # fmt: skip
            progress.update()
    finally:
        progress.close()
    return draws, stats
