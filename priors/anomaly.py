# SPDX-License-Identifier: MIT
r"""Anomaly discovery from the residual latent block.

The residual block of a disentangled generator has the prior :math:`z_{rec} \sim N(0,
I_r)`, so :math:`\lVert z_{rec}\rVert^2 \sim \chi^2_r`. A sample whose residual code lies
far out in that distribution carries structure the named variables do not explain and
the generator rarely produces; its tail probability

.. math:: \pi(z_{rec}) = P\big(\chi^2_r \ge \lVert z_{rec}\rVert^2\big)

ranks samples from most to least unusual (the chi-square test of a Gaussian code, e.g.
[1]). Typical inputs are encoder means of a held-out data set or posterior draws of
:math:`z_{rec}` in an inverse problem. A second score, :func:`reconstruction_error`,
ranks fields by how badly the generator reproduces them from their code; either ranking
is scored against fields known to be anomalous by :func:`detection_auc`.

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
from scipy.stats import chi2

from .arrays import as_matrix

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "detection_auc",
    "plot_anomalies",
    "rank_anomalies",
    "reconstruction_error",
    "residual_tail_probability",
]


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
    if top < 1:
        raise ValueError(f"`top` must be at least 1, got {top}.")
    norm2, r = _squared_norms(z_rec)
    index = np.argsort(-norm2, kind="stable")[:top]
    return {
        "index": index,
        "tail_probability": chi2.sf(norm2[index], df=r),
        "squared_norm": norm2[index],
    }


def reconstruction_error(fields: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    r"""Relative reconstruction error :math:`\lVert x - G(\mu(x))\rVert / \lVert x\rVert`.

    The norms are Frobenius norms over the grid; a large value marks a field the generator
    cannot reproduce from its code, an anomaly score that needs no residual block.

    Args:
        fields: Fields :math:`x`, shape ``(n, ny, nx)``, none identically zero.
        reconstructions: Their reconstructions :math:`G(\mu(x))`, same shape (for example
            :func:`~invprior.priors.batched.decode_latents` of
            :func:`~invprior.priors.batched.encode_means`).

    Returns:
        Relative errors, shape ``(n,)``; large means unusual.

    Raises:
        ValueError: Shapes that differ or are not ``(n, ny, nx)``.

    Example:
        >>> x = np.ones((2, 2, 2))
        >>> reconstruction_error(x, np.stack([np.ones((2, 2)), np.zeros((2, 2))]))
        array([0., 1.])
    """
    x, recon = np.asarray(fields), np.asarray(reconstructions)
    if x.ndim != 3 or recon.shape != x.shape:
        raise ValueError(
            f"`fields` and `reconstructions` must both have shape (n, ny, nx); got {x.shape} "
            f"and {recon.shape}."
        )
    return np.linalg.norm(x - recon, axis=(1, 2)) / np.linalg.norm(x, axis=(1, 2))


def detection_auc(anomalous: np.ndarray, typical: np.ndarray) -> float:
    """Area under the ROC curve of an anomaly score: P(anomalous score > typical score).

    The probability that a sample known to be anomalous scores above a typical one, over
    all pairs, ties counted half (the Mann-Whitney form of the AUC): 1 separates them
    perfectly, 0.5 is chance.

    Args:
        anomalous: Scores of anomalous samples, shape ``(m,)``, large meaning unusual.
        typical: Scores of typical samples, shape ``(n,)``.

    Returns:
        The AUC in ``[0, 1]``.

    Raises:
        ValueError: Either set is empty or not a vector.

    Example:
        >>> detection_auc(np.array([3.0, 1.0]), np.array([0.0, 1.0]))
        0.875
    """
    a, b = np.asarray(anomalous), np.asarray(typical)
    if a.ndim != 1 or b.ndim != 1 or a.size == 0 or b.size == 0:
        raise ValueError(
            f"`anomalous` and `typical` must be non-empty vectors; got shapes {a.shape} and "
            f"{b.shape}."
        )
    a, b = a[:, None], b[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


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
    from .plots import bare_axes, panels

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
    fig, axes = panels(1, order.size, 1.6)
    for ax, k in zip(axes[0], order, strict=True):
        ax.imshow(x[k], origin="lower")
        ax.set_title(f"#{k}\np = {p[k]:.2g}", fontsize=8)
        bare_axes(ax)
    fig.suptitle("most unusual residual codes: P(chi2_r >= |z_rec|^2)")
    return fig
