# SPDX-License-Identifier: MIT
r"""Anomaly discovery from the residual latent block.

The residual block of a disentangled generator has the prior :math:`z_{rec} \sim N(0,
I_r)`, so :math:`\lVert z_{rec}\rVert^2 \sim \chi^2_r`. A sample whose residual code lies
far out in that distribution carries structure the named variables do not explain and
the generator rarely produces; its tail probability

.. math:: \pi(z_{rec}) = P\big(\chi^2_r \ge \lVert z_{rec}\rVert^2\big)

ranks samples from most to least unusual (the chi-square test of a Gaussian code, e.g.
[1]). Typical inputs are encoder means of a held-out data set or posterior draws of
:math:`z_{rec}` in an inverse problem.

Note:
    Encoder means are shrunk towards 0 relative to the prior (their spread is
    :math:`I - E[\mathrm{diag}\,\sigma^2]` in a well-fitted VAE), so tail probabilities of
    means are conservative: good for ranking, not calibrated p-values.

References:
    [1] K. V. Mardia, J. T. Kent, J. M. Bibby. "Multivariate Analysis." Academic Press, 1979,
        Sec. 3.4 (the Mahalanobis distance of a Gaussian vector is chi-square).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .arrays import as_matrix

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_anomalies", "rank_anomalies", "residual_tail_probability"]


def residual_tail_probability(z_rec: np.ndarray) -> np.ndarray:
    r"""Tail probability :math:`P(\chi^2_r \ge \lVert z_{rec}\rVert^2)` of each sample.

    Computed with :func:`scipy.stats.chi2.sf`; far-out samples underflow to 0, so rank with
    :func:`rank_anomalies`, which orders by :math:`\lVert z_{rec}\rVert^2` exactly.

    Args:
        z_rec: Residual latents, shape ``(n, r)`` (a vector is ``n`` samples with
            ``r = 1``).

    Returns:
        Tail probabilities in ``[0, 1]``, shape ``(n,)``; small means unusual.

    Raises:
        ValueError: Not a matrix, no columns, or NaN/inf.

    Example:
        >>> residual_tail_probability(np.array([[0.0, 0.0], [np.sqrt(2.0), 0.0]])).round(4)
        array([1.    , 0.3679])
    """
    from scipy.stats import chi2

    norm2, r = _squared_norms(z_rec)
    return chi2.sf(norm2, df=r)


def _squared_norms(z_rec: np.ndarray) -> tuple[np.ndarray, int]:
    """Squared norm of each sample, shape ``(n,)``, and the residual block size ``r``."""
    z = as_matrix("z_rec", z_rec)
    if z.shape[1] == 0:
        raise ValueError("`z_rec` has no columns; the generator has no residual block.")
    return np.sum(z**2, axis=1), z.shape[1]


def rank_anomalies(z_rec: np.ndarray, top: int = 10) -> dict[str, np.ndarray]:
    r"""The ``top`` most unusual samples, smallest tail probability first.

    Samples are ordered by decreasing :math:`\lVert z_{rec}\rVert^2`, which for a common
    :math:`r` is the same order as increasing :math:`P(\chi^2_r \ge \lVert z_{rec}\rVert^2)`
    but has no ties from underflow; ties in the norm keep the sample order.

    Args:
        z_rec: Residual latents, shape ``(n, r)``.
        top: How many samples to return, at least 1 (at most ``n`` are).

    Returns:
        ``"index"``: sample indices, shape ``(min(top, n),)``; ``"tail_probability"``:
        their :func:`residual_tail_probability`; ``"squared_norm"``:
        their :math:`\lVert z_{rec}\rVert^2`.

    Raises:
        ValueError: ``top < 1``, or see :func:`residual_tail_probability`.

    Example:
        >>> z = np.zeros((5, 3))
        >>> z[3] = 4.0
        >>> rank_anomalies(z, top=2)["index"]
        array([3, 0])
    """
    from scipy.stats import chi2

    if top < 1:
        raise ValueError(f"`top` must be at least 1, got {top}.")
    norm2, r = _squared_norms(z_rec)
    index = np.argsort(-norm2, kind="stable")[:top]
    return {
        "index": index,
        "tail_probability": chi2.sf(norm2[index], df=r),
        "squared_norm": norm2[index],
    }


def plot_anomalies(fields: np.ndarray, scores: np.ndarray, top: int = 8) -> Figure:
    """The ``top`` fields with the smallest tail probability, most unusual first.

    Each panel has its own colour scale and is titled with the sample index and its tail
    probability; fields are drawn with ``origin="lower"``. Ties keep the sample order.

    Args:
        fields: Fields, shape ``(n, ny, nx)``.
        scores: Tail probabilities from :func:`residual_tail_probability`, shape ``(n,)``.
        top: Number of panels, at least 1 (at most ``n`` are drawn).

    Returns:
        A :class:`matplotlib.figure.Figure` with ``min(top, n)`` image axes.

    Raises:
        ValueError: Shapes that do not match, ``top < 1``, or NaN scores.
    """
    from .plots import _bare, _panels

    x = np.asarray(fields, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    if x.ndim != 3 or p.shape != (x.shape[0],):
        raise ValueError(
            f"`fields` must have shape (n, ny, nx) and `scores` shape (n,); got {x.shape} "
            f"and {p.shape}."
        )
    if top < 1 or np.isnan(p).any():
        raise ValueError(f"need top >= 1 and no NaN scores, got top={top}.")
    order = np.argsort(p, kind="stable")[:top]
    fig, axes = _panels(1, order.size, 1.6)
    for ax, k in zip(axes[0], order, strict=True):
        ax.imshow(x[k], origin="lower")
        ax.set_title(f"#{k}\np = {p[k]:.2g}", fontsize=8)
        _bare(ax)
    fig.suptitle("most unusual residual codes: P(chi2_r >= |z_rec|^2)")
    return fig
