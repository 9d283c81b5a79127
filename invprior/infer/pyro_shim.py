# SPDX-License-Identifier: MIT
"""The only place that touches Pyro's private attributes, methods and hooks.

Pyro keeps the state of its HMC and NUTS kernels, of their warm-up adapter and of a
``pyro.infer.MCMC`` run in private attributes, and NUTS builds its trajectory in private
methods. What the rest of :mod:`invprior` needs of them goes through this module:

- accessors: :func:`mean_accept_prob`, :func:`potential_energy_last`,
  :func:`kinetic_energy`, :func:`call_args`;
- kernel mixins overriding Pyro's hooks: :class:`InitialMass` (warm-up from a given
  inverse mass matrix), :class:`StartEnergy` (the Hamiltonian after the momentum refresh)
  and :class:`SubtreeJoins` (every join of two parts of a NUTS trajectory, for extra
  U-turn checks), with :class:`EnergyNUTS` and :class:`EnergyHMC`, and
  :func:`recording_copy`, a copy of a user's kernel that keeps the Hamiltonian;
- :class:`DrawRecorder`, the per-draw statistics read from a kernel after each
  iteration;
- :func:`kernel_state` and :func:`restore_kernel`, a kernel's complete state for
  sampling checkpoints (:mod:`invprior.infer.checkpoint`).

Every private name used here is listed in :data:`PYRO_ATTRIBUTES`, per Pyro class;
``tests/infer/test_pyro_shim.py`` checks that they all still exist and that this module
uses no other. The Pyro range tested is pinned in ``pyproject.toml``
(``pyro-ppl>=1.9.2,<1.10``); a new Pyro release is admitted after that test passes on it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
from pyro.infer.mcmc import HMC, MCMC, NUTS
from pyro.infer.mcmc.adaptation import BlockMassMatrix, WarmupAdapter
from pyro.infer.mcmc.nuts import _TreeInfo
from pyro.ops.dual_averaging import DualAveraging
from pyro.ops.welford import WelfordCovariance

from ..potential import Potential

__all__ = [
    "PYRO_ATTRIBUTES",
    "DrawRecorder",
    "EnergyHMC",
    "EnergyNUTS",
    "InitialMass",
    "StartEnergy",
    "SubtreeJoins",
    "TreeEnds",
    "call_args",
    "kernel_state",
    "kinetic_energy",
    "mean_accept_prob",
    "potential_energy_last",
    "recording_copy",
    "restore_kernel",
]

#: Every private attribute, method and field of Pyro that this module reads, sets,
#: calls or overrides, per class.
PYRO_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    HMC: (
        "_t", "_accept_cnt", "_mean_accept_prob", "_divergences", "_warmup_steps",
        "_initial_params", "_z_last", "_potential_energy_last", "_z_grads_last", "_adapter",
        "_find_reasonable_step_size", "_cache", "_kinetic_energy", "_initialize_adapter",
        "_sample_r",
    ),
    WarmupAdapter: (
        "step_size", "adapt_step_size", "adapt_mass_matrix", "_adaptation_disabled",
        "_warmup_steps", "_adaptation_schedule", "_build_adaptation_schedule",
        "_current_window", "_step_size_adapt_scheme", "_find_reasonable_step_size",
        "mass_matrix_adapter", "reset_step_size_adaptation",
    ),
    DualAveraging: ("prox_center", "_x_avg", "_g_avg", "_t"),
    BlockMassMatrix: (
        "_inverse_mass_matrix", "_mass_matrix_sqrt", "_mass_matrix_sqrt_inverse",
        "_mass_matrix_size", "_adapt_scheme",
    ),
    WelfordCovariance: ("diagonal", "_mean", "_m2", "n_samples"),
    NUTS: ("_build_tree", "_is_turning"),
    _TreeInfo: ("r_left_unscaled", "r_right_unscaled", "r_sum"),
    MCMC: ("_args", "_kwargs"),
}  # fmt: skip


# Accessors ---------------------------------------------------------------------------------


def mean_accept_prob(kernel: HMC) -> float:
    """The kernel's running mean acceptance probability (restarted when warm-up ends)."""
    return kernel._mean_accept_prob


def potential_energy_last(kernel: HMC) -> torch.Tensor:
    """The potential energy at the kernel's current state, a scalar tensor."""
    return kernel._potential_energy_last


def kinetic_energy(kernel: HMC, r_unscaled: dict[str, torch.Tensor]) -> torch.Tensor:
    """Kinetic energy of momentum ``r_unscaled`` (per site) under the kernel's mass matrix."""
    return kernel._kinetic_energy(r_unscaled)


def call_args(mcmc: MCMC) -> tuple[tuple, dict]:
    """The positional and keyword arguments ``mcmc.run`` passed to the model."""
    return mcmc._args, mcmc._kwargs


# Kernel mixins -----------------------------------------------------------------------------


class InitialMass:
    """Kernel mixin: warm-up starts from a given dense inverse mass matrix, not the identity.

    Pyro orders a dense block by sorted site names; ``inverse_mass_matrix`` is given in the
    :class:`~invprior.potential.LatentLayout` order of the kernel's ``potential_fn`` (a
    :class:`~invprior.potential.Potential`) and permuted here.
    """

    def __init__(
        self, *args: object, inverse_mass_matrix: torch.Tensor | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self._initial_inverse_mass = inverse_mass_matrix

    def _initialize_adapter(self) -> None:
        super()._initialize_adapter()
        if self._initial_inverse_mass is None:
            return
        names = tuple(sorted(self.initial_params))
        order = self.potential_fn.layout.positions(names)
        matrix = self._initial_inverse_mass[order][:, order]
        adapter = self._adapter.mass_matrix_adapter
        adapter.inverse_mass_matrix = {names: matrix.to(self._potential_energy_last)}
        if self._adapter.adapt_step_size:
            self._adapter.reset_step_size_adaptation(self._initial_params)


class StartEnergy:
    r"""Kernel mixin: keeps the Hamiltonian after each momentum refresh as ``start_energy``.

    :math:`H = U(\zeta) + K(p)` at the start of the transition, computed from the fresh
    momentum and the cached potential; nothing the kernel draws or computes changes.
    """

    start_energy = math.nan

    def _sample_r(self, name: str) -> tuple[dict, dict]:
        r, r_unscaled = super()._sample_r(name)
        energy = kinetic_energy(self, r_unscaled) + potential_energy_last(self)
        self.start_energy = float(energy)
        return r, r_unscaled


class EnergyNUTS(StartEnergy, NUTS):
    """NUTS that keeps ``start_energy``; its draws are those of NUTS."""


class EnergyHMC(StartEnergy, HMC):
    """HMC that keeps ``start_energy``; its draws are those of HMC."""


class TreeEnds(NamedTuple):
    """A part of a NUTS trajectory: unscaled momenta at its two ends and their sum over it.

    Attributes:
        r_left: Momentum of its leftmost state, per site.
        r_right: Momentum of its rightmost state, per site.
        r_sum: Sum of the momenta of its states, per site.
    """

    r_left: dict[str, torch.Tensor]
    r_right: dict[str, torch.Tensor]
    r_sum: dict[str, torch.Tensor]


def _ends(tree: _TreeInfo) -> TreeEnds:
    return TreeEnds(tree.r_left_unscaled, tree.r_right_unscaled, tree.r_sum)


class SubtreeJoins:
    """NUTS mixin: where Pyro finds no U-turn at a join, :meth:`turns_across` is asked too.

    Pyro checks the no-U-turn criterion (:meth:`u_turn`) only between the two ends of a
    joined trajectory. The joins are Pyro's ``_build_tree`` (two halves, built by the two
    calls it makes of ``_build_tree`` one level down) and ``sample`` (the trajectory so
    far, whose end momenta and momentum sum are tracked from the momentum ``_sample_r``
    draws, and the subtree its last top-level ``_build_tree`` call built); both then call
    ``_is_turning`` on the joined trajectory, where the two parts are handed to
    :meth:`turns_across`, left part first. Momenta are the unscaled ones, as in Pyro's
    check. Nothing the kernel draws or evaluates changes; only its stopping may.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._joins: list[tuple[int, list]] = []  # per subtree being built: direction, halves
        self._trajectory: TreeEnds | None = None  # the trajectory so far, in ``sample``
        self._new_subtree: tuple[int, _TreeInfo] | None = None  # direction, latest top subtree

    def turns_across(self, left: TreeEnds, right: TreeEnds) -> bool:
        """Whether the trajectory of ``left`` joined to ``right`` turns, besides its ends."""
        raise NotImplementedError

    def u_turn(
        self,
        r_left: dict[str, torch.Tensor],
        r_right: dict[str, torch.Tensor],
        r_sum: dict[str, torch.Tensor],
    ) -> bool:
        """Pyro's no-U-turn criterion between end momenta ``r_left``, ``r_right``."""
        return bool(super()._is_turning(r_left, r_right, r_sum))

    def _sample_r(self, name: str) -> tuple[dict, dict]:
        r, r_unscaled = super()._sample_r(name)
        self._trajectory = TreeEnds(r_unscaled, r_unscaled, r_unscaled)  # the start alone
        return r, r_unscaled

    def _build_tree(
        self,
        z: dict,
        r: dict,
        z_grads: dict,
        log_slice: torch.Tensor,
        direction: int,
        tree_depth: int,
        energy_current: torch.Tensor,
    ) -> _TreeInfo:
        self._joins.append((direction, []))
        try:
            tree = super()._build_tree(
                z, r, z_grads, log_slice, direction, tree_depth, energy_current
            )
        finally:
            self._joins.pop()
        if self._joins:
            self._joins[-1][1].append(tree)  # a half of the subtree one level up
        else:
            self._new_subtree = (direction, tree)
        return tree

    def _is_turning(self, r_left_unscaled: dict, r_right_unscaled: dict, r_sum: dict) -> bool:
        if super()._is_turning(r_left_unscaled, r_right_unscaled, r_sum):
            return True
        if self._joins:  # the two halves of a subtree
            direction, halves = self._joins[-1]
            first, second = (_ends(tree) for tree in halves)
        else:  # the trajectory so far and a new subtree, in ``sample``
            direction, tree = self._new_subtree
            first, second = self._trajectory, _ends(tree)
            self._trajectory = TreeEnds(r_left_unscaled, r_right_unscaled, r_sum)
        left, right = (first, second) if direction == 1 else (second, first)
        return self.turns_across(left, right)


def recording_copy(kernel: HMC) -> EnergyNUTS | EnergyHMC:
    """A copy of a Pyro NUTS or HMC kernel that also keeps ``start_energy``.

    The copy has the kernel's settings and state (its model and ``potential_fn`` shared,
    everything else copied), so it draws what the kernel would; the kernel itself is left
    as it is.

    Args:
        kernel: A ``pyro.infer.NUTS`` or ``pyro.infer.HMC`` (not a subclass), not run yet.

    Returns:
        An :class:`EnergyNUTS` or :class:`EnergyHMC`.

    Raises:
        TypeError: If the kernel is of another class.
    """
    kinds = {NUTS: EnergyNUTS, HMC: EnergyHMC}
    kind = kinds.get(type(kernel))
    if kind is None:
        raise TypeError(
            f"expected a pyro.infer.NUTS or pyro.infer.HMC kernel, got {type(kernel).__name__}; "
            "build the kernel as NUTS(model) or HMC(model)"
        )
    shared = {id(fn): fn for fn in (kernel.model, kernel.potential_fn) if fn is not None}
    made = kind.__new__(kind)
    made.__dict__.update(copy.deepcopy(vars(kernel), shared))
    return made


# Per-draw statistics -----------------------------------------------------------------------


class DrawRecorder:
    """Per-draw statistics after warm-up, recorded after every iteration of a kernel.

    Called as a ``pyro.infer.MCMC`` ``hook_fn`` is, after each iteration, on a kernel with
    :class:`StartEnergy`: ``step_size``, ``n_steps`` (evaluations of ``potential`` since
    the previous call), ``accept_prob`` (recovered from the kernel's running mean),
    ``energy`` (``start_energy``), ``lp`` (minus the potential energy of the draw) and, for
    NUTS, ``tree_depth``.

    Args:
        potential: The kernel's potential function, counting its evaluations in
            ``num_evals``.
        num_samples: Draws after warm-up.
        nuts: Whether to record ``tree_depth``.

    Attributes:
        stats: ``{name: (num_samples,)}``, filled as the draws come.
    """

    def __init__(self, potential: Potential, num_samples: int, nuts: bool) -> None:
        self.potential = potential
        self.nuts = nuts
        floats = ("step_size", "accept_prob", "energy", "lp")
        integers = ("n_steps", *(("tree_depth",) * nuts))
        self.stats = {key: np.zeros(num_samples) for key in floats}
        self.stats |= {key: np.zeros(num_samples, dtype=np.int64) for key in integers}
        self._evals = 0
        self._mean_accept = 0.0

    def __call__(self, kernel: StartEnergy, params: dict, stage: str, i: int) -> None:
        """Record iteration ``i`` of ``stage`` (``"Warmup..."`` or ``"Sample..."``)."""
        n_steps = self.potential.num_evals - self._evals
        self._evals = self.potential.num_evals
        mean_accept = mean_accept_prob(kernel)  # running mean since the end of warm-up
        if stage.startswith("Sample"):
            self.stats["step_size"][i] = kernel.step_size
            self.stats["n_steps"][i] = n_steps
            accept = (i + 1) * mean_accept - i * self._mean_accept  # undo the running mean
            self.stats["accept_prob"][i] = min(max(accept, 0.0), 1.0)
            self.stats["energy"][i] = kernel.start_energy
            self.stats["lp"][i] = -float(potential_energy_last(kernel))
            if self.nuts:
                self.stats["tree_depth"][i] = math.ceil(math.log2(n_steps + 1))
        self._mean_accept = mean_accept

    def running(self) -> dict[str, float]:
        """The running values a checkpoint needs besides the statistics themselves."""
        return {
            "pending_evals": self.potential.num_evals - self._evals,
            "mean_accept": self._mean_accept,
        }

    def restore(self, tensors: dict[str, torch.Tensor], running: dict[str, float]) -> None:
        """Continue from the statistics ``stats/*`` of the first draws and :meth:`running`."""
        for key, values in self.stats.items():
            saved = tensors[f"stats/{key}"].numpy()
            values[: len(saved)] = saved
        self._evals = self.potential.num_evals - running["pending_evals"]
        self._mean_accept = running["mean_accept"]


# Kernel state for checkpoints --------------------------------------------------------------


def _clone(values: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().clone() for k, v in values.items()}


def _take(
    tensors: Mapping[str, torch.Tensor], prefix: str, names: list[str], like: torch.Tensor
) -> dict[str, torch.Tensor]:
    return {k: tensors[f"{prefix}/{k}"].to(like.device) for k in names}


def kernel_state(kernel: HMC) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """A copy of an HMC/NUTS kernel's state after a completed iteration.

    Args:
        kernel: A set-up :class:`pyro.infer.mcmc.HMC` or NUTS with a block mass matrix.

    Returns:
        ``(tensors, scalars)``: cloned tensors (latent ``z/*``, gradient ``grad/*``,
        ``potential_energy``, ``initial/*``, per mass block ``mass/<i>/*`` and Welford
        ``welford/<i>/*``) and JSON-serialisable scalars.

    Raises:
        TypeError: If the kernel's mass matrix adapter is not a ``BlockMassMatrix``.
    """
    adapter = kernel._adapter
    mass = adapter.mass_matrix_adapter
    if type(mass) is not BlockMassMatrix:
        raise TypeError(
            f"checkpoints support Pyro's BlockMassMatrix adapter, got {type(mass).__name__}"
        )
    tensors = {
        **_clone(kernel._z_last, "z"),
        **_clone(kernel._z_grads_last, "grad"),
        **_clone(kernel._initial_params, "initial"),
        "potential_energy": kernel._potential_energy_last.detach().clone(),
    }
    blocks, welford = [list(names) for names in mass._inverse_mass_matrix], []
    for i, names in enumerate(mass._inverse_mass_matrix):
        tensors[f"mass/{i}/inverse"] = mass._inverse_mass_matrix[names].clone()
        tensors[f"mass/{i}/sqrt"] = mass._mass_matrix_sqrt[names].clone()
        tensors[f"mass/{i}/sqrt_inverse"] = mass._mass_matrix_sqrt_inverse[names].clone()
        scheme = mass._adapt_scheme.get(names)  # none without mass matrix adaptation
        welford.append(
            None
            if scheme is None
            else {"diagonal": scheme.diagonal, "n_samples": scheme.n_samples}
        )
        if scheme is not None:
            for part, value in (("mean", scheme._mean), ("m2", scheme._m2)):
                if isinstance(value, torch.Tensor):
                    tensors[f"welford/{i}/{part}"] = value.clone()
    scalars = {
        "t": kernel._t,
        "accept_cnt": kernel._accept_cnt,
        "mean_accept_prob": kernel._mean_accept_prob,
        "divergences": list(kernel._divergences),
        "warmup_steps": kernel._warmup_steps,
        "sites": list(kernel._z_last),
        "grad_sites": list(kernel._z_grads_last),
        "initial_sites": list(kernel._initial_params),
        "step_size": adapter.step_size,
        "current_window": adapter._current_window,
        "mass_blocks": blocks,
        "mass_sizes": [mass._mass_matrix_size[tuple(names)] for names in blocks],
        "welford": welford,
    }
    if adapter.adapt_step_size:
        scheme = adapter._step_size_adapt_scheme
        scalars["dual_averaging"] = {
            key: value for key, value in vars(scheme).items() if isinstance(value, int | float)
        }
    return tensors, scalars


def restore_kernel(
    kernel: HMC,
    tensors: Mapping[str, torch.Tensor],
    scalars: Mapping[str, object],
    like: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Put a state from :func:`kernel_state` into a new, not set-up kernel of the same kind.

    Replaces ``kernel.setup``: afterwards ``kernel.sample(params)`` continues the chain.

    Args:
        kernel: A fresh kernel built with the settings of the saved one.
        tensors: The saved tensors.
        scalars: The saved scalars.
        like: A tensor on the device the chain runs on.

    Returns:
        The current latent, the ``params`` to pass to the next ``kernel.sample``.
    """
    adapter = kernel._adapter
    mass = adapter.mass_matrix_adapter
    z = _take(tensors, "z", scalars["sites"], like)
    kernel._warmup_steps = scalars["warmup_steps"]
    kernel._initial_params = _take(tensors, "initial", scalars["initial_sites"], like)
    kernel._cache(
        z,
        tensors["potential_energy"].to(like.device),
        _take(tensors, "grad", scalars["grad_sites"], like),
    )
    kernel._t = scalars["t"]
    kernel._accept_cnt = scalars["accept_cnt"]
    kernel._mean_accept_prob = scalars["mean_accept_prob"]
    kernel._divergences = list(scalars["divergences"])
    adapter._warmup_steps = scalars["warmup_steps"]
    adapter._find_reasonable_step_size = kernel._find_reasonable_step_size
    if not adapter._adaptation_disabled:
        adapter._adaptation_schedule = adapter._build_adaptation_schedule()
    adapter._current_window = scalars["current_window"]
    adapter.step_size = scalars["step_size"]
    if adapter.adapt_step_size:
        vars(adapter._step_size_adapt_scheme).update(scalars["dual_averaging"])
    blocks = [tuple(names) for names in scalars["mass_blocks"]]
    saved = {
        part: {
            names: tensors[f"mass/{i}/{part}"].to(like.device) for i, names in enumerate(blocks)
        }
        for part in ("inverse", "sqrt", "sqrt_inverse")
    }
    mass._inverse_mass_matrix = saved["inverse"]
    mass._mass_matrix_sqrt = saved["sqrt"]
    mass._mass_matrix_sqrt_inverse = saved["sqrt_inverse"]
    mass._mass_matrix_size = dict(zip(blocks, scalars["mass_sizes"], strict=True))
    mass._adapt_scheme = {}
    for i, (names, info) in enumerate(zip(blocks, scalars["welford"], strict=True)):
        if info is None:
            continue
        scheme = WelfordCovariance(diagonal=info["diagonal"])
        scheme.n_samples = info["n_samples"]
        if f"welford/{i}/mean" in tensors:
            scheme._mean = tensors[f"welford/{i}/mean"].to(like.device)
            scheme._m2 = tensors[f"welford/{i}/m2"].to(like.device)
        mass._adapt_scheme[names] = scheme
    return dict(z)
