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

Three optimisers: L-BFGS with a strong-Wolfe line search (the default), Adam, and
``"newton"``, a Levenberg-Marquardt-damped Newton iteration [2] on the curvature of
:mod:`invprior.infer.hessian`: for an inverse problem the Gauss-Newton Hessian
:math:`H = J^T W J + D` (the one the Laplace approximation uses), for any other model the
exact autograd Hessian. A trial step :math:`p = -(H + \lambda I)^{-1} \nabla U` is
accepted when the actual decrease of :math:`U` is at least a small fraction of the
decrease :math:`-(\nabla U^T p + \tfrac12 p^T H p)` its quadratic model predicts; then
:math:`\lambda` shrinks, otherwise (also for a non-finite energy or a PDE solver failure
at the trial point) it grows and the step is recomputed from the same curvature (Nielsen's
update, section 3.2 of [3]). The first step is undamped, so for a linear forward map,
a linear generator and Gaussian priors it lands on the MAP at once; near the optimum of a
nonlinear problem with small residuals it converges fast, with large residuals (or a
``noise_std`` site, whose curvature is its expected Fisher information) linearly.

References:
    [1] J. Nocedal, S. J. Wright, "Numerical Optimization", 2nd ed., Springer (2006),
        chapter 7 (L-BFGS), https://doi.org/10.1007/978-0-387-40065-5
    [2] Same, section 10.3 (Gauss-Newton, Levenberg-Marquardt).
    [3] K. Madsen, H. B. Nielsen, O. Tingleff, "Methods for non-linear least squares
        problems", 2nd ed., IMM, Technical University of Denmark (2004).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..model import InverseProblem
from ..potential import Potential, PotentialEnergy, is_pde_failure, potential_energy
from ..validation import InputError, check_field_types
from .common import child_seeds, seeded, solve_counts, solves_since
from .hessian import Curvature, GaussNewtonHessian, autograd_hessian

__all__ = ["MapConfig", "MapResult", "find_map"]

#: The optimisers of :class:`MapConfig`.
OPTIMIZERS = ("lbfgs", "adam", "newton")


@dataclass(frozen=True)
class MapConfig:
    """Settings of :func:`find_map`.

    Attributes:
        num_restarts: Number of starts from independent prior draws (at least 1).
        max_iterations: Optimiser iterations per restart at most (L-BFGS may stop earlier
            on its tolerances, Adam runs them all; for Newton every trial step counts,
            accepted or not).
        optimizer: ``"lbfgs"`` (strong-Wolfe line search), ``"adam"`` or ``"newton"``
            (damped Gauss-Newton; see the module docstring).
        lr: Learning rate (L-BFGS: initial step, 1 is natural; Adam: step size; unused by
            Newton).
        tolerance_grad: L-BFGS and Newton stop when the largest gradient entry falls below
            this.
        tolerance_change: L-BFGS stops when the objective changes by less than this;
            Newton when the decrease its quadratic model predicts for the next step falls
            below this times ``max(1, |U|)`` (or below the dtype's resolution of ``U``).
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
        if self.optimizer not in OPTIMIZERS:
            raise InputError(
                f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got "
                f"{self.optimizer!r}"
            )
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
        gradient_evals: Reverse passes through the model used by all restarts: each
            gradient of :math:`U` counts 1; for Newton each observation Jacobian counts
            ``n_obs`` (1 where it is one batched reverse pass, for a forward map with
            ``batched_vjp``), the diagonal of the prior Hessian 2 (a gradient and a Hessian-vector
            product) and a general model's autograd Hessian ``dim + 1``. Energies without
            a gradient (line-search or trial points that are rejected) are not counted.
        jacobian_evals: Observation Jacobians computed by all restarts (Newton only).
    """

    sites: dict[str, torch.Tensor]
    latent: torch.Tensor
    potential_energy: float
    history: list[float] = field(repr=False)
    restart_energies: list[float]
    restart_latents: torch.Tensor = field(repr=False)
    pde_solves: dict[str, int] | None
    gradient_evals: int
    jacobian_evals: int


@dataclass
class _Counts:
    """Reverse passes and observation Jacobians of one restart."""

    gradient_evals: int = 0
    jacobian_evals: int = 0


def _optimize(
    potential: Potential, start: torch.Tensor, config: MapConfig, counts: _Counts
) -> tuple[torch.Tensor, list[float]]:
    """Minimise :math:`U` from ``start``, shape ``(dim,)``; returns the end point and history.

    L-BFGS or Adam; adds the gradients it takes to ``counts``.
    """
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
        counts.gradient_evals += 1
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


# Levenberg-Marquardt damping: first damping after a rejected undamped step, relative to
# the largest diagonal entry of H (Madsen, Nielsen, Tingleff's tau), and the damping above
# which (relative to the same) no step can make progress any more.
_DAMPING_START = 1e-3
_DAMPING_MAX = 1e16


def _curvature(potential: Potential, latent: torch.Tensor) -> Curvature:
    """Gauss-Newton Hessian of an inverse problem, autograd Hessian of another model.

    The observation Jacobian takes one batched reverse pass where the forward map's
    ``batched_vjp`` says it can.
    """
    if isinstance(potential, PotentialEnergy):
        return GaussNewtonHessian.at(potential, latent, potential.forward.batched_vjp)
    return autograd_hessian(potential, latent)


def _energy_with_graph(
    potential: Potential, latent: torch.Tensor
) -> tuple[float, torch.Tensor | None, torch.Tensor]:
    """:math:`U` at ``latent`` (shape ``(dim,)``) with its autograd graph kept.

    Returns:
        ``(value, energy, leaf)``: ``value`` is ``inf`` (and ``energy`` None) where the
        energy is not finite or the forward solve fails; ``leaf`` is the copy of
        ``latent`` the graph starts from.
    """
    leaf = latent.detach().clone().requires_grad_(True)
    if not bool(torch.isfinite(leaf).all()):
        return math.inf, None, leaf
    try:
        energy = potential.flat(leaf)
    except Exception as err:
        if not is_pde_failure(err):
            raise
        return math.inf, None, leaf
    value = float(energy.detach())
    return (value, energy, leaf) if math.isfinite(value) else (math.inf, None, leaf)


def _decrease(curvature: Curvature, grad: torch.Tensor, step: torch.Tensor) -> float:
    r"""The decrease :math:`-(g^T p + \tfrac12 p^T H p)` the quadratic model predicts."""
    return -float(grad @ step + 0.5 * step @ curvature.matvec(step))


def _newton(
    potential: Potential, start: torch.Tensor, config: MapConfig, counts: _Counts
) -> tuple[torch.Tensor, list[float]]:
    """Damped Newton iteration from ``start``, shape ``(dim,)`` (see the module docstring).

    Stops when the largest gradient entry is below ``tolerance_grad``, when the decrease
    the last curvature's model predicts for the next step is below the resolution (see
    :class:`MapConfig`), after ``max_iterations`` trial steps, or when the damping has
    grown so large that no step can make progress.

    Returns:
        The end point, shape ``(dim,)``, and the energies of the start and of every trial
        point. Adds the reverse passes and Jacobians it spends to ``counts``. A PDE failure
        at ``start`` propagates (the restart fails); at a trial point it counts as an
        infinite energy.
    """
    latent = start.detach().clone()
    value, energy, leaf = _energy_with_graph(potential, latent)
    history = [value]
    if energy is None:
        return latent, history
    (grad,) = torch.autograd.grad(energy, leaf)
    counts.gradient_evals += 1
    resolution = max(config.tolerance_change, torch.finfo(latent.dtype).eps)
    damping, growth, curvature, scale = 0.0, 2.0, None, 1.0
    for _ in range(config.max_iterations):
        if float(grad.abs().max()) <= config.tolerance_grad:
            break
        if curvature is None:
            curvature = _curvature(potential, latent)
            counts.gradient_evals += curvature.reverse_passes
            counts.jacobian_evals += curvature.jacobian_evals
            scale = max(float(curvature.diagonal().abs().max()), 1.0)
        step = curvature.solve(-grad, damping)
        ratio, trial = -math.inf, None
        if step is not None:
            predicted = _decrease(curvature, grad, step)
            if predicted <= resolution * max(1.0, abs(value)):
                break  # no decrease the energy could resolve
            trial = _energy_with_graph(potential, latent + step)
            history.append(trial[0])
            if trial[1] is not None:
                ratio = (value - trial[0]) / predicted
        if ratio > 1e-4:
            value, energy, leaf = trial
            (grad,) = torch.autograd.grad(energy, leaf)
            counts.gradient_evals += 1
            latent = leaf.detach()
            damping *= max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
            growth = 2.0
            # converged if the last curvature's model predicts no resolvable decrease
            step = curvature.solve(-grad, damping)
            if step is not None and _decrease(curvature, grad, step) <= resolution * max(
                1.0, abs(value)
            ):
                break
            curvature = None
        else:
            damping = max(damping, _DAMPING_START * scale) * growth
            growth *= 2.0
            if damping > _DAMPING_MAX * scale:
                break
    return latent, history


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
    the line search steps back from them (Newton's damping grows, and a solver failure at
    a trial point counts the same).

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
    counts = _Counts()
    ends, energies, histories = [], [], []
    for k, seed_k in enumerate(child_seeds(seed, config.num_restarts)):
        with seeded(seed_k, device):
            start = potential.prior_latents(1)[0]
            if k == 0 and initial_latent is not None:
                start = initial_latent.detach().to(start)
            try:
                if config.optimizer == "newton":
                    end, history = _newton(potential, start, config, counts)
                else:
                    end, history = _optimize(potential, start, config, counts)
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
        gradient_evals=counts.gradient_evals,
        jacobian_evals=counts.jacobian_evals,
    )
