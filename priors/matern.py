# SPDX-License-Identifier: MIT
r"""Matern hyperparameters of a set of fields by maximum likelihood.

The fields :math:`f_1, \dots, f_m` minus their mean :math:`\bar f` are taken as independent
:math:`N(0, \sigma^2 (K_\nu(\ell) + \delta I))` on every ``stride``-th grid node, with
:math:`K_\nu(\ell)` the unit-variance Matern correlation of
:meth:`invprior.priors.GaussianFieldGenerator.matern`. A Matern kernel is stationary, so a
sub-grid sees the same covariance at a fraction of the cost. For fixed :math:`(\ell, \nu)`
the maximising variance is closed form,

.. math::

    \hat\sigma^2 = \frac{1}{m P} \sum_i r_i^T (K + \delta I)^{-1} r_i,

with :math:`P` sub-grid nodes and :math:`r_i = f_i - \bar f`, and the profile
log-likelihood :math:`-\tfrac{m}{2}(P \log\hat\sigma^2 + \log\det(K + \delta I))` (up to
constants) is maximised over a log-spaced grid of :math:`\ell` and
:math:`\nu \in \{3/2, 5/2\}`. The jitter :math:`\delta` keeps :math:`K` invertible: smooth
fields would otherwise push the likelihood onto the kernel's numerically null directions.

References:
    [1] C. E. Rasmussen and C. K. I. Williams, "Gaussian Processes for Machine
        Learning", MIT Press (2006), Sec. 5.4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import GridSpec
from .gaussian import GaussianFieldGenerator

__all__ = ["fit_matern"]

LENGTH_SCALES = tuple(np.geomspace(0.02, 0.6, 15))
"""Default candidate length scales, as fractions of the square root of the grid's area."""


def _sub_grid(grid: GridSpec, stride: int) -> GridSpec:
    """The grid of every ``stride``-th node of ``grid`` (same spacing of the kept nodes)."""
    ny, nx = grid.shape
    (x0, y0), (x1, y1) = grid.bbox
    xs, ys = np.linspace(x0, x1, nx)[::stride], np.linspace(y0, y1, ny)[::stride]
    return GridSpec((len(ys), len(xs)), ((xs[0], ys[0]), (xs[-1], ys[-1])))


def fit_matern(
    fields: np.ndarray,
    grid: GridSpec,
    length_scales: Sequence[float] | None = None,
    stride: int | None = None,
    jitter: float = 1e-4,
) -> dict[str, float]:
    r"""Maximum-likelihood Matern variance, length scale and smoothness of ``fields``.

    Args:
        fields: Draws of the field, shape ``(m, ny, nx)``, ``m >= 2``.
        grid: Their grid.
        length_scales: Candidate length scales as fractions of
            :math:`\sqrt{\text{area}}` of the grid's box (default: 15 log-spaced values
            from 0.02 to 0.6).
        stride: Use every ``stride``-th grid node in each direction (default: the
            smallest stride leaving at most 16 nodes per side).
        jitter: :math:`\delta`, added to the unit-variance correlation matrix.

    Returns:
        ``{"variance", "length_scale", "nu", "log_likelihood"}``: the maximiser (length
        scale in the grid's units) and its profile log-likelihood up to constants.

    Raises:
        ValueError: If ``fields`` is not ``(m >= 2, ny, nx)`` on ``grid``, or ``stride``
            or ``jitter`` is not positive.

    Example:
        >>> import torch
        >>> from invprior.priors import GaussianFieldGenerator, GridSpec
        >>> grid = GridSpec((8, 8))
        >>> gp = GaussianFieldGenerator.matern(grid, 1.0, 0.3, nu=2.5, variance_fraction=1.0)
        >>> _ = torch.manual_seed(0)
        >>> fields = gp.decode(torch.zeros(50, 0), torch.randn(50, gp.rec_dim)).numpy()
        >>> sorted(fit_matern(fields, grid, length_scales=[0.1, 0.3]))
        ['length_scale', 'log_likelihood', 'nu', 'variance']
    """
    fields = np.asarray(fields, dtype=np.float64)
    ny, nx = grid.shape
    if fields.ndim != 3 or fields.shape[1:] != (ny, nx) or len(fields) < 2:
        raise ValueError(
            f"fields must have shape (m >= 2, {ny}, {nx}) on the grid, got {fields.shape}"
        )
    stride = stride or max(1, -(-max(ny, nx) // 16))
    if stride < 1 or jitter <= 0:
        raise ValueError(f"stride and jitter must be positive, got {stride} and {jitter}")
    sub = _sub_grid(grid, stride)
    r = fields[:, ::stride, ::stride].reshape(len(fields), -1)
    r = r - r.mean(0)
    m, p = r.shape
    (x0, y0), (x1, y1) = grid.bbox
    side = np.sqrt((x1 - x0) * (y1 - y0))
    best = None
    for nu in (1.5, 2.5):
        for ell in length_scales if length_scales is not None else LENGTH_SCALES:
            unit = GaussianFieldGenerator.matern(sub, 1.0, ell * side, nu, variance_fraction=1.0)
            basis = unit.basis.double().numpy()
            lam, vec = np.linalg.eigh(basis @ basis.T + jitter * np.eye(p))
            quad = ((r @ vec) ** 2 / lam).sum()
            variance = quad / (m * p)
            loglik = -0.5 * m * (p * np.log(variance) + np.log(lam).sum())
            if best is None or loglik > best["log_likelihood"]:
                best = {"variance": variance, "length_scale": ell * side, "nu": nu}
                best["log_likelihood"] = float(loglik)
    return best
