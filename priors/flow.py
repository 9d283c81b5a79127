# SPDX-License-Identifier: MIT
r"""Conditional flow matching on the linear path, and ODE solvers for the learned flow.

A velocity field :math:`v(t, x; z)` defines the flow :math:`\dot x = v(t, x; z)`,
:math:`x(0) = \varepsilon \sim N(0, I)`, and the map :math:`\Phi(\varepsilon; z) = x(1)`.
Flow matching [1] with the linear (rectified-flow [2]) path

.. math::

    x_t = (1 - t)\,\varepsilon + t\,x, \qquad \dot x_t = x - \varepsilon,

regresses :math:`v` on the path's velocity (Eq. (23) of [1] with
:math:`\sigma_{min} = 0`; Eq. (1) of [2]):

.. math::

    L(v) = E_{t \sim U(0, 1),\ \varepsilon \sim N(0, I),\ (x, z) \sim data}
    \big\| v(t, x_t; z) - (x - \varepsilon) \big\|^2 .

Its minimiser is :math:`v^*(t, x_t; z) = E[x - \varepsilon \mid x_t, z]`, whose flow
carries :math:`N(0, I)` to the data distribution given :math:`z` (Theorem 1 of [1]).

A *velocity* here is any callable ``velocity(t, x, z)`` that returns a tensor shaped like
``x``; ``t`` is a tensor whose shape broadcasts to the batch shape of ``x`` (a scalar
inside the solvers, one time per sample in the loss). Everything is generic over the
event shape of ``x`` (vectors for toys, ``(ny, nx)`` grids for fields).

The fixed-step solvers are written without in-place operations, so a gradient flows
through every step to :math:`\varepsilon`, :math:`z` and the network weights (direct
backpropagation, no adjoint ODE): the map they define is smooth, as HMC wants. The
adaptive solver is for checking the fixed-step ones only.

References:
    [1] Y. Lipman, R. T. Q. Chen, H. Ben-Hamu, M. Nickel, M. Le, "Flow Matching for
        Generative Modeling", ICLR (2023), https://arxiv.org/abs/2210.02747
    [2] X. Liu, C. Gong, Q. Liu, "Flow Straight and Fast: Learning to Generate and
        Transfer Data with Rectified Flow", ICLR (2023), https://arxiv.org/abs/2209.03003
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["METHODS", "flow_matching_loss", "integrate", "integrate_adaptive"]

Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

#: The fixed-step solvers of :func:`integrate`, with their order of accuracy.
METHODS = {"euler": 1, "midpoint": 2, "heun": 2}


def flow_matching_loss(
    velocity: Velocity,
    x: torch.Tensor,
    z: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Monte Carlo estimate of the flow-matching loss :math:`L(v)` on one batch.

    Draws one :math:`t \sim U(0, 1)` and one :math:`\varepsilon \sim N(0, I)` per sample
    and returns the mean over the batch and the event entries of
    :math:`(v(t, x_t; z) - (x - \varepsilon))^2`, i.e. :math:`L(v)` divided by the event
    size.

    Args:
        velocity: The velocity field ``velocity(t, x, z)``.
        x: Data, shape ``(n, *event)``.
        z: Conditioning latents, shape ``(n, m)`` (``m`` may be 0).
        generator: Random number generator for ``t`` and :math:`\varepsilon` (the global
            one when None).

    Returns:
        The loss, a scalar tensor.
    """
    if x.ndim < 2 or z.ndim != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(
            f"expected x of shape (n, *event) and z of shape (n, m), got {tuple(x.shape)} "
            f"and {tuple(z.shape)}"
        )
    n = x.shape[0]
    t = torch.rand(n, generator=generator, dtype=x.dtype, device=x.device)
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    tb = t.reshape(n, *([1] * (x.ndim - 1)))
    x_t = (1 - tb) * eps + tb * x
    return (velocity(t, x_t, z) - (x - eps)).square().mean()


def _step(
    velocity: Velocity, t: torch.Tensor, x: torch.Tensor, z: torch.Tensor, h: float, method: str
) -> torch.Tensor:
    """One step of size ``h`` from ``(t, x)``."""
    k1 = velocity(t, x, z)
    if method == "euler":
        return x + h * k1
    if method == "midpoint":
        return x + h * velocity(t + h / 2, x + (h / 2) * k1, z)
    k2 = velocity(t + h, x + h * k1, z)
    return x + (h / 2) * (k1 + k2)


def integrate(
    velocity: Velocity,
    eps: torch.Tensor,
    z: torch.Tensor,
    steps: int = 16,
    method: str = "heun",
) -> torch.Tensor:
    r"""The flow map :math:`\Phi(\varepsilon; z) = x(1)` by a fixed-step explicit solver.

    With :math:`h = 1/N` and :math:`t_k = k h`, ``"euler"`` is
    :math:`x_{k+1} = x_k + h v(t_k, x_k)` (order 1), ``"midpoint"`` is
    :math:`x_{k+1} = x_k + h v(t_k + h/2, x_k + (h/2) v(t_k, x_k))` and ``"heun"`` is
    :math:`x_{k+1} = x_k + (h/2)(k_1 + k_2)`, :math:`k_1 = v(t_k, x_k)`,
    :math:`k_2 = v(t_k + h, x_k + h k_1)` (both order 2, two evaluations per step).
    Differentiable in ``eps``, ``z`` and the velocity's parameters.

    Args:
        velocity: The velocity field ``velocity(t, x, z)``.
        eps: Start points :math:`x(0)`, shape ``(*batch, *event)``.
        z: Conditioning latents, shape ``(*batch, m)`` (broadcast as the velocity does).
        steps: Number of steps :math:`N \geq 1`.
        method: ``"euler"``, ``"midpoint"`` or ``"heun"``.

    Returns:
        :math:`x(1)`, shape and dtype of ``eps``.

    Example:
        >>> import torch
        >>> decay = lambda t, x, z: -x  # exact flow x(1) = exp(-1) x(0)
        >>> x1 = integrate(decay, torch.ones(2, 3, dtype=torch.float64), torch.zeros(2, 0))
        >>> round(float(x1[0, 0]), 3), round(float(torch.tensor(-1.0).exp()), 3)
        (0.368, 0.368)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    h = 1.0 / steps
    x = eps
    for k in range(int(steps)):
        x = _step(velocity, eps.new_tensor(k * h), x, z, h, method)
    return x


def integrate_adaptive(
    velocity: Velocity,
    eps: torch.Tensor,
    z: torch.Tensor,
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> torch.Tensor:
    r""":math:`\Phi(\varepsilon; z)` by adaptive RK45 (:func:`scipy.integrate.solve_ivp`).

    For evaluation only (reference solutions, checking the step count of
    :func:`integrate`): it works on detached float64 NumPy copies, so no gradient flows.

    Args:
        velocity: The velocity field ``velocity(t, x, z)``.
        eps: Start points, shape ``(*batch, *event)``.
        z: Conditioning latents, shape ``(*batch, m)``.
        rtol: Relative tolerance of the solver.
        atol: Absolute tolerance of the solver.

    Returns:
        :math:`x(1)`, shape, dtype and device of ``eps`` (no gradient).

    Raises:
        RuntimeError: If the solver fails.
    """
    from scipy.integrate import solve_ivp

    shape = eps.shape

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(y.reshape(shape)).to(eps)
        return velocity(eps.new_tensor(t), x, z).double().cpu().numpy().reshape(-1)

    with torch.no_grad():
        y0 = eps.detach().double().cpu().numpy().reshape(-1)
        sol = solve_ivp(rhs, (0.0, 1.0), y0, method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return torch.as_tensor(sol.y[:, -1].reshape(shape)).to(eps)
