# SPDX-License-Identifier: MIT
r"""Block structure of the posterior: how far it is from block-diagonal in the latent blocks.

The latent splits into the named block :math:`z_{aux}` and the residual block
:math:`z_{rec}`. [1] derives when the latent posterior is close to block-diagonal between
the two, so that the named variables can be read without the residual;
:func:`block_correlation` measures it on posterior draws (MCMC or any other), and
:func:`plot_block_correlation` draws it. What the *prior* induces on the field near a
latent point is :mod:`invprior.linearised`.

References:
    [1] A. Ganguli, E. Constantinescu. "Disentangled Deep Priors for Bayesian Inverse
        Problems." https://arxiv.org/abs/2604.02304
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from matplotlib.figure import Figure

from .priors.arrays import to_numpy
from .sites import Z_AUX, Z_REC

__all__ = ["BlockCorrelation", "block_correlation", "plot_block_correlation"]


@dataclass(frozen=True, eq=False)
class BlockCorrelation:
    r"""Posterior cross-correlation between the named block and the residual block.

    Attributes:
        cross: :math:`R_{jk} = \mathrm{corr}(z_{aux,j}, z_{rec,k})` over all pooled draws,
            shape ``(d, r)``.
        aux_labels: Row names (the named variables), length ``d``.
        rec_labels: Column names ``z_rec[k]``, length ``r``.
        rms: :math:`\|R\|_F / \sqrt{d r}`, the root mean square cross-correlation: 0 for a
            block-diagonal posterior, at most 1.
        max_abs: :math:`\max_{jk} |R_{jk}|`.
        num_draws: Number :math:`n` of pooled draws. With independent blocks and
            independent draws each :math:`R_{jk}` has standard deviation about
            :math:`1/\sqrt{n}`, so ``rms`` of that size is Monte Carlo noise; for MCMC draws
            use the effective sample size in place of :math:`n`.
    """

    cross: np.ndarray
    aux_labels: tuple[str, ...]
    rec_labels: tuple[str, ...]
    rms: float
    max_abs: float
    num_draws: int


_MIN_DRAWS = 10


def _posterior_blocks(
    samples_or_tree: Mapping[str, torch.Tensor | np.ndarray] | xr.DataTree,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """``z_aux`` ``(*sample, d)``, ``z_rec`` ``(*sample, r)`` and the tree's aux names."""
    if isinstance(samples_or_tree, xr.DataTree):
        if "posterior" not in samples_or_tree.children:
            raise ValueError(
                "the DataTree has no posterior group; build it with invprior.datatree.to_arviz"
            )
        source = samples_or_tree["posterior"]
        keys, names = source.data_vars, source.coords.get("aux")
    elif isinstance(samples_or_tree, Mapping):
        source = keys = samples_or_tree
        names = None
    else:
        raise TypeError(
            "samples_or_tree must be a mapping of draws (MCMCResult.samples) or an ArviZ "
            f"DataTree, got {type(samples_or_tree).__name__}"
        )
    missing = [k for k in (Z_AUX, Z_REC) if k not in keys]
    if missing:
        raise ValueError(
            f"the draws have no {missing}; block_correlation needs both 'z_aux' and 'z_rec' "
            "(a prior without named variables has no z_aux block)"
        )
    names = None if names is None else tuple(str(n) for n in np.asarray(names))
    z_aux, z_rec = to_numpy(source[Z_AUX]), to_numpy(source[Z_REC])
    return z_aux, z_rec, names


def block_correlation(
    samples_or_tree: Mapping[str, torch.Tensor | np.ndarray] | xr.DataTree,
    aux_names: Sequence[str] | None = None,
) -> BlockCorrelation:
    r"""Posterior cross-correlation between ``z_aux`` and ``z_rec``, and how block-diagonal.

    All chains and draws are pooled: with :math:`Z_a` ``(n, d)`` and :math:`Z_r` ``(n, r)``
    centred, :math:`R = D_a^{-1} Z_a^T Z_r D_r^{-1}` with :math:`D` the column norms. The
    posterior is block-diagonal in :math:`(z_{aux}, z_{rec})` to second order when
    :math:`R = 0`; ``rms`` and ``max_abs`` summarise how far it is (see
    :class:`BlockCorrelation` for the Monte Carlo noise level). Chains that have not mixed
    add their between-chain differences to :math:`R`; check R-hat first.

    Args:
        samples_or_tree: Posterior draws with ``z_aux`` of shape ``(*sample, d)`` and
            ``z_rec`` of shape ``(*sample, r)``, e.g. ``MCMCResult.samples`` (sample shape
            ``(chain, draw)``), or a DataTree whose ``posterior`` group holds them (from
            :func:`invprior.datatree.to_arviz`).
        aux_names: Names of the ``d`` named variables; default the DataTree's ``aux``
            coordinate, else ``z_aux[j]``.

    Returns:
        The :class:`BlockCorrelation`.

    Raises:
        TypeError: If the draws are neither a mapping nor a DataTree.
        ValueError: If ``z_aux`` or ``z_rec`` is missing or empty, the sample shapes differ,
            there are fewer than 10 draws, NaN or infinite values, a constant coordinate, or
            ``aux_names`` of the wrong length.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> draws = {"z_aux": rng.normal(size=(2, 500, 2)), "z_rec": rng.normal(size=(2, 500, 3))}
        >>> corr = block_correlation(draws, aux_names=["x0", "y0"])
        >>> corr.cross.shape, corr.num_draws, corr.max_abs < 0.15
        ((2, 3), 1000, True)
    """
    z_aux, z_rec, tree_names = _posterior_blocks(samples_or_tree)
    if z_aux.ndim < 2 or z_rec.ndim < 2 or z_aux.shape[:-1] != z_rec.shape[:-1]:
        raise ValueError(
            f"z_aux and z_rec have shapes {z_aux.shape} and {z_rec.shape}; expected "
            "(*sample, d) and (*sample, r) with the same sample shape, e.g. (chain, draw, d)"
        )
    n, d, r = math.prod(z_aux.shape[:-1]), z_aux.shape[-1], z_rec.shape[-1]
    x = np.concatenate([z_aux.reshape(n, d), z_rec.reshape(n, r)], axis=1).astype(np.float64)
    if d == 0 or r == 0 or x.shape[0] < _MIN_DRAWS:
        raise ValueError(
            f"need d >= 1, r >= 1 and at least {_MIN_DRAWS} draws, got d={d}, r={r} and "
            f"{x.shape[0]} draws"
        )
    if not np.isfinite(x).all():
        raise ValueError("the z_aux or z_rec draws hold NaN or infinite values; drop those draws")
    names = tuple(aux_names) if aux_names is not None else tree_names
    names = names if names is not None else tuple(f"{Z_AUX}[{j}]" for j in range(d))
    if len(names) != d:
        raise ValueError(f"got {len(names)} aux names for a z_aux block of size {d}")
    labels = (*names, *(f"{Z_REC}[{k}]" for k in range(r)))
    x = x - x.mean(0)
    norm = np.sqrt(np.square(x).sum(0))
    if (norm == 0).any():
        raise ValueError(f"constant draws of {[labels[i] for i in np.flatnonzero(norm == 0)]}")
    x = x / norm
    cross = x[:, :d].T @ x[:, d:]
    return BlockCorrelation(
        cross=cross,
        aux_labels=names,
        rec_labels=labels[d:],
        rms=float(np.linalg.norm(cross) / math.sqrt(d * r)),
        max_abs=float(np.abs(cross).max()),
        num_draws=x.shape[0],
    )


def plot_block_correlation(correlation: BlockCorrelation) -> Figure:
    """Heat map of the posterior cross-correlation, named variables down, ``z_rec`` across.

    Args:
        correlation: The result of :func:`block_correlation`.

    Returns:
        A figure with one heat map on ``[-1, 1]``, values printed in the cells.
    """
    d, r = correlation.cross.shape
    fig = Figure(figsize=(1.5 + 0.7 * r, 1.4 + 0.5 * d), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(correlation.cross, cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(r), correlation.rec_labels, rotation=45, ha="right")
    ax.set_yticks(range(d), correlation.aux_labels)
    for (j, k), value in np.ndenumerate(correlation.cross):
        ax.text(k, j, f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title(
        f"posterior corr(z_aux, z_rec): rms {correlation.rms:.3f}, max "
        f"{correlation.max_abs:.3f}\n(1/sqrt(n) = {correlation.num_draws**-0.5:.3f})",
        fontsize=9,
    )
    return fig
