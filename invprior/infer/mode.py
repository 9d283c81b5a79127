# SPDX-License-Identifier: MIT
r"""Maximum a posteriori estimation in the unconstrained latent space.

The objective is the potential energy :math:`U(\zeta)` of :mod:`invprior.potential` (the
negative log posterior density of the unconstrained latent, the density HMC and NUTS
sample), of an :class:`~invprior.model.InverseProblem` or of any Pyro model with
continuous latent sites. For sites with unbounded support (``e_aux``, ``z_rec``, Normal
priors on named variables) this is the usual MAP; for bounded priors (the default Uniform
over the training range, a positive noise scale) it is the mode of the unconstrained
density, which keeps the optimum inside the support (Stan's ``optimize(jacobian=True)``).

Several restarts from independent prior draws guard against local optima of the
non-convex objective :math:`U(\zeta) = \tfrac12 \|y - F(G(z))\|^2_{\Gamma^{-1}} + \dots`.

References:
    [1] J. Nocedal, S. J. Wright, "Numerical Optimization", 2nd ed., Springer (2006),
        chapter 7 (L-BFGS), https://doi.org/10.1007/978-0-387-40065-5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..model import InverseProblem
from ..potential import Potential, is_pde_failure, potential_energy
from ..validation import InputError, check_field_types
from .common import child_seeds, prior_latents, seeded, solve_counts, solves_since

__all__ = ["MapConfig", "MapResult", "find_map"]


@dataclass(frozen=True)
class MapConfig:
    """Settings of :func:`find_map`.

    Attributes:
        num_restarts: Number of starts from independent prior draws (at least 1).
        max_iterations: Optimiser iterations per restart at most (L-BFGS may stop earlier
            on its tolerances, Adam runs them all).
        optimizer: ``"lbfgs"`` (strong-Wolfe line search) or ``"adam"``.
        lr: Learning rate (L-BFGS: initial step, 1 is natural; Adam: step size).
        tolerance_grad: L-BFGS stops when the largest gradient entry falls below this.
        tolerance_change: L-BFGS stops when the objective changes by less than this.
    """

    num_restarts: int = 4
    max_iterations: int = 200
    optimizer: str = "lbfgs"
    lr: float = 1.0
    tolerance_grad: float = 1e-9
    tolerance_change: float = 1e-14

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("num_restarts", "max_iterations"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise InputError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr}")
        for name in ("tolerance_grad", "tolerance_change"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class MapResult:
    """The best optimum over all restarts.

    Attributes:
        sites: Every latent and deterministic site at the optimum, detached: for an
            inverse problem the prior's (named variables in physical units, ``e_aux``,
            ``z_aux``, ``z_rec``, ``field``) and ``noise_std`` where it is a site.
        latent: Unconstrained latent at the optimum, shape ``(dim,)``.
        potential_energy: :math:`U` at the optimum.
        history: Objective at every evaluation of the best restart.
        restart_energies: Final :math:`U` of every restart (``inf`` for a failed solve).
        restart_latents: Final unconstrained latent of every restart, shape
            ``(num_restarts, dim)``.
        pde_solves: ``{"forward": n, "adjoint": m}`` used by all restarts, or None for a
            model that is not an inverse problem.
    """

    sites: dict[str, torch.Tensor]
    latent: torch.Tensor
    potential_energy: float
    history: list[float] = field(repr=False)
    restart_energies: list[float]
    restart_latents: torch.Tensor = field(repr=False)
    pde_solves: dict[str, int] | None


def _optimize(
    potential: Potential, start: torch.Tensor, config: MapConfig
) -> tuple[torch.Tensor, list[float]]:
    """Minimise :math:`U` from ``start``, shape ``(dim,)``; returns the end point and history."""
    latent = start.clone().requires_grad_(True)
    history: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        energy = potential.flat(latent) if bool(torch.isfinite(latent).all()) else None
        if energy is None or not bool(torch.isfinite(energy)):
            # a line-search trial too far out (or a diverged direction): an infinite energy
            # makes the search step back instead of carrying NaN into the next iterate
            latent.grad = torch.zeros_like(latent)
            history.append(math.inf)
            return torch.tensor(math.inf, dtype=latent.dtype, device=latent.device)
        energy.backward()
        history.append(float(energy.detach()))
        return energy

    if config.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(
            [latent],
            lr=config.lr,
            max_iter=config.max_iterations,
            tolerance_grad=config.tolerance_grad,
            tolerance_change=config.tolerance_change,
            history_size=20,
            line_search_fn="strong_wolfe",
        )
        optimizer.step(closure)
    else:
        optimizer = torch.optim.Adam([latent], lr=config.lr)
        for _ in range(config.max_iterations):
            optimizer.step(closure)
    return latent.detach(), history


def find_map(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    *,
    seed: int = 0,
    initial_latent: torch.Tensor | None = None,
    config: MapConfig | None = None,
    **kwargs: object,
) -> MapResult:
    r"""Minimise the potential energy from several prior draws.

    Exported as :func:`invprior.infer.map`. Restart ``k`` starts from a prior draw made
    with a seed derived from ``seed``; ``initial_latent`` (if given) replaces the first.
    A restart whose forward solve fails, or that ends at a non-finite point, is recorded
    with energy ``inf``; inside a restart, points of non-finite energy count as ``inf``, so
    the line search steps back from them.

    Args:
        problem: The inverse problem, or any Pyro model whose latent sites are continuous,
            called as ``problem(obs)`` (see :func:`invprior.potential.potential_energy`).
        obs: Observed data, shape ``(n_obs,)`` for an inverse problem.
        seed: Seed of the prior draws (same seed, same result).
        initial_latent: Optional unconstrained start, shape ``(dim,)``.
        config: A :class:`MapConfig`; alternatively pass its fields as keyword arguments.
        **kwargs: Fields of :class:`MapConfig` (``num_restarts``, ``max_iterations``, ...).

    Returns:
        The :class:`MapResult` of the restart with the lowest energy.

    Raises:
        RuntimeError: If every restart hit a PDE solver failure.
    """
    config = config if config is not None else MapConfig(**kwargs)
    potential = potential_energy(problem, obs)
    device = potential.obs.device
    before = solve_counts(potential.forward)
    ends, energies, histories = [], [], []
    for k, seed_k in enumerate(child_seeds(seed, config.num_restarts)):
        with seeded(seed_k, device):
            start = prior_latents(potential, 1)[0]
            if k == 0 and initial_latent is not None:
                start = initial_latent.detach().to(start)
            try:
                end, history = _optimize(potential, start, config)
                finite = bool(torch.isfinite(end).all())
                energy = float(potential.flat(end).detach()) if finite else math.inf
            except Exception as err:
                if not is_pde_failure(err):
                    raise
                end, history, energy = start, [], math.inf
        ends.append(end)
        energies.append(energy if math.isfinite(energy) else math.inf)
        histories.append(history)
    best = min(range(len(energies)), key=energies.__getitem__)
    if not math.isfinite(energies[best]):
        raise RuntimeError(
            f"all {config.num_restarts} MAP restarts failed (forward solve failures or "
            f"non-finite energies); check the solver options or the prior ranges"
        )
    with torch.no_grad():
        sites = potential.sites(potential.constrain(potential.layout.unpack(ends[best])))
    return MapResult(
        sites={name: value.detach() for name, value in sites.items()},
        latent=ends[best],
        potential_energy=energies[best],
        history=histories[best],
        restart_energies=energies,
        restart_latents=torch.stack(ends),
        pde_solves=solves_since(before, potential.forward),
    )
