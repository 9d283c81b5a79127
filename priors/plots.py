# SPDX-License-Identifier: MIT
r"""Figures for judging a generative prior: traversals, latent-factor grids, reconstructions.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so it is
safe in scripts, tests and threads with any backend; the caller saves or shows it.
Fields are drawn with ``origin="lower"``: row ``i`` of a field is the ``i``-th grid line
in :math:`y` (the grid convention of :mod:`invprior.priors.base`).

References:
    [1] A. Ganguli, N. Ramachandra, J. Bessac, E. Constantinescu. "Enhancing Interpretability
        in Generative Modeling: Statistically Disentangled Latent Spaces Guided by Generative
        Factors in Scientific Datasets." https://arxiv.org/abs/2507.00298
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from .arrays import as_matrix
from .batched import decode_latents
from .metrics import abs_correlation, lds, ssim_scores

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .base import Generator

__all__ = [
    "bare_axes",
    "latent_labels",
    "panels",
    "plot_latent_factor_grid",
    "plot_reconstructions",
    "plot_traversals",
]

_PANEL = 1.3  # inches per image panel
_MAX_POINTS = 1000  # scatter points per panel


def panels(nrows: int, ncols: int, size: float) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows x ncols`` square panels of ``size`` inches with fixed margins.

    Fixed margins (room for row labels, column titles and a suptitle) instead of a layout
    engine keep figures with a hundred panels fast to draw.

    Args:
        nrows: Rows of panels.
        ncols: Columns of panels.
        size: Side of a panel, in inches.

    Returns:
        The figure and its axes, an object array of shape ``(nrows, ncols)``.
    """
    left, right, top, bottom = 0.6, 0.1, 0.75, 0.35
    width, height = left + right + ncols * size, top + bottom + nrows * size
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=0.08,
        hspace=0.3,
    )
    return fig, axes


def bare_axes(ax: Axes) -> None:
    """Remove the ticks of an image panel."""
    ax.set_xticks([])
    ax.set_yticks([])


def latent_labels(generator: Generator) -> list[str]:
    """Axis labels of the latent coordinates: the aux names, then ``rec 0, rec 1, ...``."""
    return [*generator.aux_names, *(f"rec {k}" for k in range(generator.rec_dim))]


def plot_traversals(
    generator: Generator, z_center: np.ndarray, span: float = 2.5, steps: int = 7
) -> Figure:
    r"""Latent traversals: one row per latent coordinate, ``steps`` columns.

    Row :math:`k` decodes :math:`z_c + t\,e_k` for :math:`t` evenly spaced in
    :math:`[-\mathrm{span}, \mathrm{span}]`, all other coordinates held at ``z_center``
    (the latent scale is standardised, so ``span`` counts prior standard deviations).
    Each row shares one colour scale, so a coordinate that changes nothing shows a row of
    identical images.

    Args:
        generator: The generator; decoded without gradients in its current mode.
        z_center: Latent to traverse around, shape ``(aux_dim + rec_dim,)``, auxiliary first.
        span: Largest offset from the centre.
        steps: Number of offsets per row, at least 2.

    Returns:
        A figure with ``(aux_dim + rec_dim) * steps`` axes.

    Raises:
        ValueError: ``z_center`` of the wrong size or non-finite, ``span <= 0`` or ``steps < 2``.
    """
    dim = generator.aux_dim + generator.rec_dim
    z0 = np.asarray(z_center, dtype=np.float64).reshape(-1)
    if z0.size != dim or not np.isfinite(z0).all():
        raise ValueError(
            f"`z_center` must hold {dim} finite values (aux_dim + rec_dim), got shape "
            f"{np.shape(z_center)}; pass one latent, auxiliary block first."
        )
    if not span > 0 or steps < 2:
        raise ValueError(f"need span > 0 and steps >= 2, got span={span}, steps={steps}.")
    offsets = np.linspace(-span, span, steps)
    z = np.repeat(z0[None, None], dim, axis=0).repeat(steps, axis=1)
    z[np.arange(dim), :, np.arange(dim)] += offsets
    images = decode_latents(generator, z.reshape(dim * steps, dim), batch_size=256)
    images = images.reshape(dim, steps, *images.shape[-2:])
    (x0, y0), (x1, y1) = generator.grid.bbox
    fig, axes = panels(dim, steps, _PANEL)
    for k, label in enumerate(latent_labels(generator)):
        lo, hi = images[k].min(), images[k].max()
        for s in range(steps):
            ax = axes[k, s]
            ax.imshow(images[k, s], origin="lower", extent=(x0, x1, y0, y1), vmin=lo, vmax=hi)
            bare_axes(ax)
            if k == 0:
                ax.set_title(f"{offsets[s]:+.2g}", fontsize=8)
        axes[k, 0].set_ylabel(label, fontsize=8)
    fig.suptitle("latent traversals: coordinate k of z_center shifted by t")
    return fig


def plot_latent_factor_grid(
    factors: np.ndarray,
    latents: np.ndarray,
    names: Sequence[str],
    latent_names: Sequence[str] | None = None,
) -> Figure:
    r"""Scatter of every factor against every latent, with :math:`|\mathrm{corr}|` per panel.

    Row :math:`j` is factor :math:`u_j`, column :math:`l` latent :math:`z_l`; the largest
    :math:`|\mathrm{corr}|` of each row is printed in bold, and the title gives LDS (Eq. (10)
    of [1], :func:`invprior.priors.metrics.lds`). At most 1000 evenly spaced samples are drawn
    per panel.

    Args:
        factors: Ground-truth factors, shape ``(n, K)``.
        latents: Latent codes, shape ``(n, L)``.
        names: Factor names, length ``K``.
        latent_names: Latent names, length ``L``; default ``z0, z1, ...``.

    Returns:
        A figure with ``K * L`` axes.

    Raises:
        ValueError: Names of the wrong length, or the checks of :func:`lds`.
    """
    c = abs_correlation(factors, latents)
    f, z = as_matrix("factors", factors), as_matrix("latents", latents)
    if latent_names is None:
        latent_names = [f"z{k}" for k in range(z.shape[1])]
    if len(names) != f.shape[1] or len(latent_names) != z.shape[1]:
        raise ValueError(
            f"got {len(names)} factor names and {len(latent_names)} latent names for "
            f"{f.shape[1]} factors and {z.shape[1]} latents; pass one name per column."
        )
    rows = np.linspace(0, f.shape[0] - 1, min(f.shape[0], _MAX_POINTS)).astype(int)
    fig, axes = panels(f.shape[1], z.shape[1], 1.6)
    for j in range(f.shape[1]):
        best = int(np.argmax(c[j]))
        for k in range(z.shape[1]):
            ax = axes[j, k]
            ax.scatter(z[rows, k], f[rows, j], s=2, alpha=0.4, linewidths=0)
            ax.set_title(
                f"{c[j, k]:.2f}", fontsize=8, fontweight="bold" if k == best else "normal"
            )
            bare_axes(ax)
            if j == f.shape[1] - 1:
                ax.set_xlabel(latent_names[k], fontsize=8)
        axes[j, 0].set_ylabel(names[j], fontsize=8)
    fig.suptitle(f"|corr(u, z)| per panel; LDS = {lds(factors, latents):.3f}")
    return fig


def plot_reconstructions(truth: np.ndarray, recon: np.ndarray, n: int = 6) -> Figure:
    """Truth (top row) and reconstruction (bottom row, titled with its SSIM) side by side.

    Each column shares the colour scale of its true field.

    Args:
        truth: True fields, shape ``(m, ny, nx)``.
        recon: Reconstructions, same shape.
        n: Number of columns; the first ``min(n, m)`` samples are drawn.

    Returns:
        A figure with ``2 * min(n, m)`` axes.

    Raises:
        ValueError: ``n < 1``, or the checks of :func:`invprior.priors.metrics.ssim_scores`.
    """
    if n < 1:
        raise ValueError(f"`n` must be at least 1, got {n}.")
    t = np.asarray(truth, dtype=np.float64)
    r = np.asarray(recon, dtype=np.float64)
    if t.ndim != 3:
        raise ValueError(f"`truth` must have shape (m, ny, nx), got {t.shape}.")
    t, r = t[:n], r[:n]
    scores = ssim_scores(t, r)
    fig, axes = panels(2, len(t), _PANEL)
    for k in range(len(t)):
        lo, hi = t[k].min(), t[k].max()
        axes[0, k].imshow(t[k], origin="lower", vmin=lo, vmax=hi)
        axes[1, k].imshow(r[k], origin="lower", vmin=lo, vmax=hi)
        axes[1, k].set_title(f"SSIM {scores[k]:.3f}", fontsize=8)
        bare_axes(axes[0, k])
        bare_axes(axes[1, k])
    axes[0, 0].set_ylabel("truth", fontsize=8)
    axes[1, 0].set_ylabel("reconstruction", fontsize=8)
    fig.suptitle(f"truth and reconstruction; median SSIM {np.median(scores):.3f}")
    return fig
