# SPDX-License-Identifier: MIT
r"""The forward-model contract shared by every PDE in :mod:`invprior.pde`.

A forward model maps a field given on a regular grid to sensor observations,
:math:`y = F(m)`, and applies the transpose of its Jacobian to a cotangent,
:math:`\bar m = J(m)^T \bar y`, with one adjoint solve. Everything is float64 NumPy;
torch never appears here (:mod:`invprior.bridge` wraps a model as a torch operation).

Grid convention: ``field[i, j]`` is the value at the node
``(xmin + j * (xmax - xmin) / (nx - 1), ymin + i * (ymax - ymin) / (ny - 1))``, so
row 0 is the bottom edge (plot with ``origin="lower"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = ["AffineForwardModel", "CachedState", "ForwardModel", "SolveCounter"]


@dataclass
class SolveCounter:
    """Counts of PDE solves, for benchmarks and results.

    Attributes:
        forward: Number of forward solves (one per distinct forward evaluation).
        adjoint: Number of adjoint solves (one per vector-Jacobian product).
    """

    forward: int = 0
    adjoint: int = 0

    @property
    def total(self) -> int:
        """All solves."""
        return self.forward + self.adjoint

    def reset(self) -> None:
        """Set both counts to zero."""
        self.forward = 0
        self.adjoint = 0


class ForwardModel(ABC):
    """A PDE solve followed by point observations, with its adjoint.

    Subclasses set every attribute below in their constructor; the torch bridge
    (``invprior.bridge.TorchForward``) and the inverse problem read them directly. Every
    method is collective on ``comm``: all ranks pass the same replicated field and
    receive the same replicated result.

    Attributes:
        comm: The MPI communicator of the mesh.
        n_obs: Number of observations.
        grid_shape: ``(ny, nx)`` of the input field.
        grid_bbox: ``((xmin, ymin), (xmax, ymax))`` of the input grid.
        counter: Forward and adjoint solves so far.
    """

    comm: MPI.Comm
    n_obs: int
    grid_shape: tuple[int, int]
    grid_bbox: tuple[tuple[float, float], tuple[float, float]]
    counter: SolveCounter

    @abstractmethod
    def forward(self, field: np.ndarray) -> np.ndarray:
        """Predicted observations.

        Args:
            field: Grid values, shape ``grid_shape``.

        Returns:
            Observations, shape ``(n_obs,)``.
        """

    @abstractmethod
    def vjp(self, field: np.ndarray, obs_cotangent: np.ndarray) -> np.ndarray:
        r"""Vector-Jacobian product :math:`J(m)^T \bar y`.

        Args:
            field: Grid values at which the Jacobian is taken, shape ``grid_shape``.
            obs_cotangent: Cotangent of the observations, shape ``(n_obs,)``.

        Returns:
            Cotangent of the field, shape ``grid_shape``.
        """


class AffineForwardModel(ForwardModel):
    r"""A forward model affine in the field, :math:`F(m) = F m + c`.

    Its dense map can stand in for the solves
    (``invprior.bridge.DenseObservationMap``).
    """

    @abstractmethod
    def affine_map(self) -> tuple[np.ndarray, np.ndarray]:
        r"""``(F, c)`` with ``forward(m)`` :math:`= F m + c`, replicated on every rank.

        Returns:
            The matrix :math:`F`, shape ``(n_obs, ny * nx)`` (the field flattened row by
            row), and the offset :math:`c`, shape ``(n_obs,)``.
        """


class CachedState:
    """Mixin: a forward model whose gradient needs the state of its last forward solve.

    The class's ``solve_forward`` calls :meth:`_forget_state` before it changes the state
    and :meth:`_keep_state` once the solve succeeded; :meth:`forward` and
    :meth:`_ensure_state` then solve only for a field other than the cached one.
    """

    _state_field: np.ndarray | None = None
    _state_obs: np.ndarray | None = None

    def _forget_state(self) -> None:
        self._state_field = None

    def _keep_state(self, field: np.ndarray, obs: np.ndarray) -> None:
        """Record the observations ``obs`` of the state just solved for ``field``."""
        self._state_obs = obs
        self._state_field = field.copy()

    def _ensure_state(self, field: np.ndarray) -> None:
        """Solve the forward problem unless the cached state belongs to ``field`` (checked)."""
        if self._state_field is None or not np.array_equal(field, self._state_field):
            self.solve_forward(field)

    def forward(self, field: np.ndarray) -> np.ndarray:
        """Predicted observations, shape ``(n_obs,)``, for a field of shape ``grid_shape``."""
        self._ensure_state(self.check_field(field))
        return self._state_obs.copy()
