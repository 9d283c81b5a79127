# SPDX-License-Identifier: MIT
r"""A :mod:`invprior.pde` forward model as a differentiable torch operation.

:class:`PDEFunction` is a :class:`torch.autograd.Function` modelled on torch-fenics'
``FEniCSFunction`` [1]: its forward runs the PDE solves, its backward the adjoint solves.
Inside, everything is float64 NumPy on the CPU; results go back to the caller's dtype and
device. Fields are replicated on every MPI rank of the model's communicator (the model
scatters them to owned dofs and all-reduces observations and gradients), so torch only
ever sees replicated tensors.

:class:`DenseObservationMap` is the other forward model of an affine problem (such as
the source problem): its dense map :math:`F m + c`, built once from ``n_obs`` adjoint
solves, applied in torch on the field's device, with no solve afterwards. Which of the
two a study uses is chosen when it builds its forward model (``[pde] dense``).

A :class:`PDESolveError` of a forward solve is registered with Pyro's integrator
(:func:`pyro.ops.integrator.register_exception_handler`) when this module is imported, so
HMC and NUTS see a NaN energy and count a divergence instead of crashing.

References:
    [1] P. Barkman, torch-fenics: PyTorch-FEniCS interface,
        https://github.com/barkm/torch-fenics
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import numpy as np
import torch
from pyro.ops.integrator import register_exception_handler

from invprior.pde.base import AffineForwardModel, ForwardModel, SolveCounter
from invprior.pde.errors import PDESolveError

__all__ = ["DenseObservationMap", "NotTwiceDifferentiableError", "PDEFunction", "TorchForward"]

logger = logging.getLogger(__name__)

# A failed solve inside an HMC/NUTS trajectory is a divergence, not a crash, for any model
# that solves the PDE through this module, whatever else is imported.
register_exception_handler(
    "pde", lambda err: isinstance(err, PDESolveError), warn_on_overwrite=False
)


def _as_batch(tensor: torch.Tensor, tail: tuple[int, ...]) -> np.ndarray:
    """Detached float64 CPU copy, shape ``(n, *tail)``."""
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy().reshape(-1, *tail)


class NotTwiceDifferentiableError(RuntimeError):
    """A second derivative through a PDE solve was asked for; the adjoint gives only first."""


class PDEFunction(torch.autograd.Function):
    r"""Observations :math:`y = F(m)` of a batch of fields, with :math:`J^T \bar y` as backward.

    Use through :class:`TorchForward`, which checks its inputs. If an adjoint solve fails
    with :class:`PDESolveError`, the backward returns NaN gradients for that batch entry
    instead of raising, so a sampler sees a divergent step (the forward solve does raise).
    """

    @staticmethod
    def forward(ctx: object, field: torch.Tensor, model: ForwardModel) -> torch.Tensor:
        """Solve the PDE for every field of the batch.

        Args:
            ctx: Autograd context.
            field: Fields, shape ``(*batch, ny, nx)``.
            model: The forward model.

        Returns:
            Observations, shape ``(*batch, n_obs)``, with the dtype and device of ``field``.
        """
        fields = _as_batch(field, model.grid_shape)
        obs = np.stack([model.forward(f) for f in fields]) if len(fields) else np.zeros((0,))
        ctx.model = model
        ctx.save_for_backward(field)
        out = torch.from_numpy(obs.reshape(*field.shape[:-2], model.n_obs))
        return out.to(dtype=field.dtype, device=field.device)

    @staticmethod
    def backward(ctx: object, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        """One adjoint solve per batch entry.

        The adjoint runs in NumPy, so its result has no derivative: a backward that
        builds a graph for second derivatives (``create_graph=True``) raises
        :class:`NotTwiceDifferentiableError` instead of silently dropping the PDE's
        curvature.

        Args:
            ctx: Autograd context.
            grad_output: Cotangent of the observations, shape ``(*batch, n_obs)``.

        Returns:
            Cotangent of the fields, shape ``(*batch, ny, nx)``, and ``None`` for the model.
        """
        if torch.is_grad_enabled() and grad_output.requires_grad:
            raise NotTwiceDifferentiableError(
                "a second derivative through a PDE solve was asked for (create_graph=True), "
                "but the adjoint gives first derivatives only; use a Gauss-Newton Hessian "
                "(invprior.infer.laplace on an InverseProblem) instead"
            )
        (field,) = ctx.saved_tensors
        model = ctx.model
        fields = _as_batch(field, model.grid_shape)
        cotangents = _as_batch(grad_output, (model.n_obs,))
        grads = np.empty_like(fields)
        for k, (f, c) in enumerate(zip(fields, cotangents, strict=True)):
            try:
                grads[k] = model.vjp(f, c)
            except PDESolveError as err:
                logger.warning("adjoint solve failed, returning NaN gradients: %s", err)
                grads[k] = np.nan
        out = torch.from_numpy(grads.reshape(field.shape))
        return out.to(dtype=field.dtype, device=field.device), None


class _ModelTorchForward(ABC):
    """What both torch forward models share: the model's attributes and the input checks."""

    model: ForwardModel
    batched_vjp: bool

    @property
    def n_obs(self) -> int:
        """Number of observations."""
        return int(self.model.n_obs)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the input fields."""
        return tuple(self.model.grid_shape)

    @property
    def grid_bbox(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((xmin, ymin), (xmax, ymax))`` of the input grid."""
        return self.model.grid_bbox

    @property
    def counter(self) -> SolveCounter:
        """Counts of the model's forward and adjoint solves."""
        return self.model.counter

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        """Predicted observations.

        Args:
            field: Fields, shape ``(*batch, ny, nx)``, any floating dtype and device.

        Returns:
            Observations, shape ``(*batch, n_obs)``, on the dtype and device of ``field``.

        Raises:
            TypeError: If ``field`` is not a floating-point tensor.
            ValueError: If its last two dimensions are not ``grid_shape``.
            PDESolveError: If a forward solve fails (never for the dense map).
        """
        self._check_field(field)
        return self._observe(field)

    @abstractmethod
    def _observe(self, field: torch.Tensor) -> torch.Tensor:
        """The observations of a checked field, shape ``(*batch, n_obs)``."""

    def _check_field(self, field: torch.Tensor) -> None:
        """Raise TypeError or ValueError unless ``field`` is floating, ``(*batch, ny, nx)``."""
        if not isinstance(field, torch.Tensor):
            raise TypeError(f"field must be a torch.Tensor, got {type(field).__name__}")
        if not field.is_floating_point():
            raise TypeError(f"field must have a floating dtype, got {field.dtype}")
        if field.dim() < 2 or tuple(field.shape[-2:]) != self.grid_shape:
            raise ValueError(
                f"field has shape {tuple(field.shape)} but the forward model expects "
                f"(*batch, {self.grid_shape[0]}, {self.grid_shape[1]}); decode on the model's grid"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, n_obs={self.n_obs})"


class TorchForward(_ModelTorchForward):
    """A forward model as a torch callable: fields ``(*batch, ny, nx)`` to ``(*batch, n_obs)``.

    Every call solves the PDE (:class:`PDEFunction`). Collective on the model's
    communicator: every rank calls it with the same field.

    Args:
        model: A :class:`invprior.pde.ForwardModel` such as
            :class:`invprior.pde.SourceProblem`.

    Example:
        >>> from mpi4py import MPI
        >>> import torch
        >>> from invprior.pde import SourceProblem, unit_square
        >>> F = TorchForward(SourceProblem(unit_square(MPI.COMM_WORLD, 4), [[0.5, 0.5]], (5, 5)))
        >>> m = torch.ones(2, 5, 5, requires_grad=True)
        >>> F(m).shape
        torch.Size([2, 1])
        >>> F(m).sum().backward()
        >>> m.grad.shape
        torch.Size([2, 5, 5])
    """

    #: Its backward is one adjoint solve per cotangent, outside torch: not batched.
    batched_vjp = False

    def __init__(self, model: ForwardModel) -> None:
        if not isinstance(model, ForwardModel):
            raise TypeError(
                f"model must be an invprior.pde.ForwardModel (e.g. SourceProblem), "
                f"got {type(model).__name__}"
            )
        self.model = model

    def _observe(self, field: torch.Tensor) -> torch.Tensor:
        """One PDE solve per field (:class:`PDEFunction`)."""
        return PDEFunction.apply(field, self.model)


class DenseObservationMap(_ModelTorchForward):
    r"""An affine forward model as its dense map: fields ``(*batch, ny, nx)`` to observations.

    Built from the model's :meth:`~invprior.pde.base.AffineForwardModel.affine_map`
    (``n_obs`` adjoint solves and one forward solve, collective on the model's
    communicator); a call is then :math:`F m + c` in torch, float64, on the field's
    device, and autograd gives :math:`F^T \bar y`: no solve, no MPI, so the ranks need
    not call it together.

    Args:
        model: A :class:`invprior.pde.base.AffineForwardModel` such as
            :class:`invprior.pde.SourceProblem`.

    Example:
        >>> from mpi4py import MPI
        >>> import torch
        >>> from invprior.pde import SourceProblem, unit_square
        >>> pde = SourceProblem(unit_square(MPI.COMM_WORLD, 4), [[0.5, 0.5]], (5, 5))
        >>> F = DenseObservationMap(pde)
        >>> m = torch.ones(2, 5, 5, dtype=torch.float64)
        >>> torch.allclose(F(m), TorchForward(pde)(m))
        True
    """

    #: Its backward is a matrix product in torch: a batch of cotangents in one reverse pass.
    batched_vjp = True

    def __init__(self, model: AffineForwardModel) -> None:
        if not isinstance(model, AffineForwardModel):
            raise TypeError(
                f"model must be an invprior.pde.base.AffineForwardModel (e.g. SourceProblem), "
                f"got {type(model).__name__}; a nonlinear model has no dense map, use "
                f"TorchForward"
            )
        self.model = model
        F, c = model.affine_map()
        self._dense = (torch.from_numpy(F), torch.from_numpy(c))

    def _observe(self, field: torch.Tensor) -> torch.Tensor:
        """:math:`F m + c` in float64 on the field's device.

        The map is copied to the field's device when that changes, so a GPU-resident
        generator's field never leaves the device. No finiteness check (it would
        synchronise the device): a non-finite field gives non-finite observations.
        """
        if self._dense[0].device != field.device:
            self._dense = tuple(t.to(field.device) for t in self._dense)
        F, c = self._dense
        obs = torch.matmul(field.to(F.dtype).flatten(-2), F.T) + c
        return obs.to(field.dtype)
