# SPDX-License-Identifier: MIT
r"""Proper scores of posterior field draws against a known truth.

The relative L2 error of the posterior mean and the 90% coverage of the pointwise band
are :func:`invprior.report.field_scores`; this module adds the score that rewards a sharp
and calibrated distribution at once.

With posterior draws :math:`X_1, \dots, X_n` of a quantity and its truth :math:`x^\star`,
the continuous ranked probability score [1] is estimated without bias by

.. math::

    \mathrm{CRPS} = \frac1n \sum_i |X_i - x^\star|
        - \frac{1}{2 n (n-1)} \sum_{i \ne j} |X_i - X_j|

(lower is better; it has the units of :math:`x`). The pair sum is computed in
:math:`O(n \log n)` from the sorted draws,
:math:`\sum_{i \ne j} |X_i - X_j| = 2 \sum_i (2i - n - 1) X_{(i)}`.

References:
    [1] T. Gneiting and A. E. Raftery, "Strictly proper scoring rules, prediction, and
        estimation", J. Amer. Statist. Assoc. 102 (2007), Eq. (20),
        https://doi.org/10.1198/016214506000001437
"""

from __future__ import annotations

import numpy as np

__all__ = ["crps"]


def crps(draws: np.ndarray, truth: np.ndarray) -> float:
    """Sample CRPS of ``draws`` against ``truth``, averaged over the grid nodes.

    Args:
        draws: Posterior draws, shape ``(n, *shape)`` with ``n >= 2`` (e.g. ``(n, ny, nx)``).
        truth: The truth, shape ``shape``.

    Returns:
        The mean over the nodes of the per-node unbiased CRPS estimate.

    Raises:
        ValueError: If there are fewer than 2 draws or ``truth`` does not match a draw.

    Example:
        >>> import numpy as np
        >>> crps(np.array([[0.0], [2.0]]), np.array([3.0]))  # (3 + 1) / 2 - (2 + 2) / 4
        1.0
    """
    draws = np.asarray(draws, dtype=np.float64)
    truth = np.asarray(truth)
    if draws.ndim < 1 or len(draws) < 2 or draws.shape[1:] != truth.shape:
        raise ValueError(
            f"expected draws of shape (n >= 2, *shape) and a truth of shape shape, got "
            f"{draws.shape} and {truth.shape}; pass one draw per row"
        )
    x = np.sort(draws.reshape(len(draws), -1), axis=0)
    n = len(x)
    skill = np.abs(x - truth.reshape(-1)).mean(0)
    weights = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    spread = 2 * (weights * x).sum(0) / (n * (n - 1))
    return float((skill - 0.5 * spread).mean())
