# SPDX-License-Identifier: MIT
"""Derivative and discretisation checks: Taylor remainder test, L2 error, convergence rates.

These return numbers and never print; tests and benchmarks decide what to do with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mpi4py import MPI

import dolfinx.fem
import numpy as np
import ufl

__all__ = ["convergence_rates", "l2_error", "taylor_test"]


def taylor_test(
    f: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    m: np.ndarray,
    dm: np.ndarray,
    eps: Sequence[float] | None = None,
) -> dict[str, np.ndarray | float]:
    r"""Second-order Taylor remainder test of a gradient.

    .. math::

        r(\varepsilon) = |f(m + \varepsilon\, dm) - f(m) - \varepsilon \langle \nabla f(m),
        dm \rangle| = O(\varepsilon^2)

    for a correct gradient (and :math:`O(\varepsilon)` for a wrong one).

    Args:
        f: Scalar function of an array shaped like ``m``.
        grad: Its gradient, an array shaped like ``m``.
        m: Base point.
        dm: Direction, shape of ``m``.
        eps: Decreasing step sizes; default ``1e-2 * 2**-k`` for ``k = 0..5``.

    Returns:
        ``eps`` (shape ``(k,)``), ``remainders`` (shape ``(k,)``), ``rates`` (shape
        ``(k - 1,)``, the slopes of :math:`\log r` against :math:`\log \varepsilon`) and
        ``rate`` (their median).
    """
    m = np.asarray(m, dtype=np.float64)
    dm = np.asarray(dm, dtype=np.float64)
    if m.shape != dm.shape:
        raise ValueError(f"dm must have the shape of m, {m.shape}, got {dm.shape}")
    steps = np.asarray(1e-2 * 0.5 ** np.arange(6) if eps is None else eps, dtype=np.float64)
    f0 = f(m)
    slope = float(np.sum(np.asarray(grad(m)) * dm))
    remainders = np.array([abs(f(m + e * dm) - f0 - e * slope) for e in steps])
    rates = np.diff(np.log(remainders)) / np.diff(np.log(steps))
    return {
        "eps": steps,
        "remainders": remainders,
        "rates": rates,
        "rate": float(np.median(rates)),
    }


def l2_error(
    u_h: dolfinx.fem.Function, exact: Callable[[ufl.SpatialCoordinate], ufl.core.expr.Expr]
) -> float:
    r""":math:`\|u_h - u\|_{L^2(\Omega)}` for an exact solution given as UFL.

    Collective on the mesh's communicator.

    Args:
        u_h: Discrete solution.
        exact: Maps the spatial coordinate to the exact solution as a UFL expression.

    Returns:
        The error, the same on every rank.
    """
    mesh = u_h.function_space.mesh
    e = u_h - exact(ufl.SpatialCoordinate(mesh))
    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(e * e * ufl.dx(degree=6)))
    return float(np.sqrt(mesh.comm.allreduce(local, op=MPI.SUM)))


def convergence_rates(h: Sequence[float], errors: Sequence[float]) -> np.ndarray:
    r"""Observed orders :math:`\log(e_{k+1}/e_k) / \log(h_{k+1}/h_k)`, shape ``(k - 1,)``."""
    h, errors = np.asarray(h, dtype=np.float64), np.asarray(errors, dtype=np.float64)
    return np.diff(np.log(errors)) / np.diff(np.log(h))
