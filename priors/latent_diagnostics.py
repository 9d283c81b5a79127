# SPDX-License-Identifier: MIT
r"""Latent-space diagnostics for generators without known factors, after bfVAE [1].

Four tools answer "does each latent act on its own part of the output?" without
ground-truth factors:

- :func:`traversal_heterogeneity` (FVH-LT of [1]): which output features each latent
  moves, from the variance of the features along a traversal of that latent;
- :func:`~invprior.priors.dirty_regression.dirty_block_sparse_regression` (DBSR-LS of
  [1], in its own module): which features each latent explains in encoded data, from a
  regression with the "dirty" sparse + row-sparse model of [2];
- :func:`separation_index` (LSSI of [1]): one number in ``[0, 1]`` summarising either or
  both;
- :func:`align_latents` (GAS of [1]): a greedy matching of the latent coordinates of two
  training runs, so their diagnostics can be compared or averaged.

[1] describes these procedures in words and publishes no code; the exact computations
here are stated in each docstring and are this package's choices where [1] leaves room.
A *feature* is one number computed from a decoded field: a pixel, the mean of a block of
pixels, or anything a user feature map returns.

References:
    [1] X. Lang, M. M. Rahman, F. Liu. "A Unified Latent Space Disentanglement VAE Framework
        with Robust Disentanglement Effectiveness Evaluation." https://arxiv.org/abs/2603.11242
    [2] A. Jalali, P. Ravikumar, S. Sanghavi, C. Ruan. "A Dirty Model for Multi-task
        Learning." NeurIPS 2010. https://papers.nips.cc/paper/4125-a-dirty-model-for-multi-task-learning
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MethodType
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .arrays import MIN_SAMPLES, as_matrix, reference_tensor
from .batched import map_batches

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "align_latents",
    "plot_traversal_heterogeneity",
    "separation_index",
    "traversal_heterogeneity",
]

FeatureMap = Callable[[np.ndarray], np.ndarray]


def _features(
    fields: np.ndarray, features: int | FeatureMap | None
) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Feature matrix ``(m, p)`` of decoded ``fields (m, ...)`` and the features' grid shape."""
    m = fields.shape[0]
    if features is None:
        return fields.reshape(m, -1), fields.shape[1:]
    if callable(features):
        out = np.asarray(features(fields), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != m:
            raise ValueError(
                f"the feature map must return shape ({m}, n_features) for {m} fields, got "
                f"{out.shape}."
            )
        return out, None
    if not isinstance(features, int | np.integer):
        raise TypeError(
            f"`features` must be None, an int block size or a callable, got "
            f"{type(features).__name__}."
        )
    b = int(features)
    if fields.ndim < 3 or b < 1 or b > min(fields.shape[-2:]):
        raise ValueError(
            f"block pooling needs fields of shape (m, ..., ny, nx) and 1 <= block <= "
            f"min(ny, nx); got block {features} for decoded shape {fields.shape}."
        )
    ny, nx = fields.shape[-2] // b, fields.shape[-1] // b
    cropped = fields[..., : ny * b, : nx * b]
    pooled = cropped.reshape(*fields.shape[:-2], ny, b, nx, b).mean(axis=(-3, -1))
    return pooled.reshape(m, -1), pooled.shape[1:]


def traversal_heterogeneity(
    decode: Callable,
    latent_dim: int,
    features: int | FeatureMap | None = None,
    *,
    num_points: int = 11,
    span: float = 2.0,
    num_base: int = 8,
    seed: int = 0,
    batch_size: int = 256,
    like: torch.Tensor | None = None,
) -> dict[str, np.ndarray | tuple[int, ...] | None]:
    r"""Feature variance heterogeneity via latent traversal (FVH-LT of [1]).

    Computed as follows. Draw ``num_base`` base latents :math:`z^{(b)} \sim N(0, I)` with
    ``seed`` and a grid :math:`t_1..t_S` of ``num_points`` values evenly spaced in
    :math:`[-\mathrm{span}, \mathrm{span}]`. For each latent coordinate :math:`i`, decode
    :math:`z^{(b)}` with coordinate :math:`i` replaced by :math:`t_s`, compute the features
    :math:`f_p`, and take their population variance over the :math:`S` grid values,
    averaged over the base draws:

    .. math::
        V_{ip} = \frac{1}{B}\sum_{b=1}^{B} \mathrm{Var}_s\, f_p\big(G(z^{(b)}_{-i}, t_s)\big),
        \qquad
        H_{ip} = \frac{V_{ip}}{\sum_{l} V_{lp}}

    :math:`H` (the heat map) is each feature's variance split over the latents; a column of
    a feature no latent moves stays 0. A well-separated generator has one dominant latent
    per feature.

    Args:
        decode: ``decode(z) -> fields`` for latents ``z`` of shape ``(m, latent_dim)``,
            returning shape ``(m, ...)``; NumPy or torch, called without gradients (a
            module decodes in its current mode). A bound method of a
            :class:`torch.nn.Module` (e.g. ``vae.decode_latent``, with
            ``z = (z_aux, z_rec)``) gets tensors with the module's dtype and device.
        latent_dim: Number of latent coordinates :math:`d`.
        features: ``None``: every output value is a feature; an ``int`` ``b``: the means of
            ``b x b`` pixel blocks of fields ``(m, ..., ny, nx)`` (incomplete edge blocks are
            dropped); a callable: ``features(fields) -> (m, p)``.
        num_points: Grid values :math:`S` per traversal, at least 2.
        span: Half-width of the grid in prior standard deviations, positive.
        num_base: Base draws :math:`B`, at least 1.
        seed: Seed of the base draws (NumPy).
        batch_size: Latents decoded at once.
        like: Pass latents to ``decode`` as tensors with this tensor's dtype and device
            (for a torch function that is not a module's bound method).

    Returns:
        ``"share"``: :math:`H`, shape ``(d, p)``; ``"variance"``: :math:`V`, shape
        ``(d, p)``; ``"feature_shape"``: the grid shape of the features for pixels or
        blocks (for :func:`plot_traversal_heterogeneity`), ``None`` for a feature map.

    Raises:
        TypeError: ``features`` is not ``None``, an ``int`` or a callable.
        ValueError: Bad sizes, a block larger than the field, a decoder or feature map
            returning the wrong number of rows, or non-finite output.

    Example:
        >>> def decode(z):  # latent i moves row i of a 2 x 3 field
        ...     return np.repeat(z[:, :, None], 3, axis=2)
        >>> out = traversal_heterogeneity(decode, 2)
        >>> out["share"].round(3)
        array([[1., 1., 1., 0., 0., 0.],
               [0., 0., 0., 1., 1., 1.]])
    """
    if latent_dim < 1 or num_points < 2 or num_base < 1 or not span > 0:
        raise ValueError(
            "need latent_dim >= 1, num_points >= 2, num_base >= 1 and span > 0; got "
            f"{latent_dim}, {num_points}, {num_base}, {span}."
        )
    base = np.random.default_rng(seed).standard_normal((num_base, latent_dim))
    grid = np.linspace(-span, span, num_points)
    z = np.tile(base[None, :, None, :], (latent_dim, 1, num_points, 1))
    coord = np.arange(latent_dim)
    z[coord, :, :, coord] = grid  # z[i, b, s] is base draw b with coordinate i at t_s
    m = z.shape[0] * num_base * num_points
    if like is None and isinstance(decode, MethodType) and isinstance(decode.__self__, nn.Module):
        like = reference_tensor(decode.__self__)
    fields = map_batches(decode, z.reshape(m, latent_dim), batch_size, like)
    if fields.shape[0] != m:
        raise ValueError(
            f"`decode` must return one field per latent, shape (m, ...) for input shape "
            f"(m, {latent_dim}); got {fields.shape[0]} fields for m = {m}."
        )
    feats, shape = _features(fields, features)
    if not np.isfinite(feats).all():
        raise ValueError("the decoded features hold NaN or infinite values.")
    variance = feats.reshape(latent_dim, num_base, num_points, -1).var(axis=2).mean(axis=1)
    total = variance.sum(axis=0)
    share = np.divide(variance, total, out=np.zeros_like(variance), where=total > 0)
    return {"share": share, "variance": variance, "feature_shape": shape}


def plot_traversal_heterogeneity(
    share: np.ndarray,
    feature_shape: Sequence[int] | None = None,
    latent_names: Sequence[str] | None = None,
) -> Figure:
    """Heat map of which features each latent moves (the ``"share"`` of FVH-LT).

    With ``feature_shape`` (pixels or pooled blocks), one panel per latent shows its share
    of each feature's variance on the field grid (``origin="lower"``); without it, one
    matrix with a row per latent and a column per feature. The colour scale is ``[0, 1]``.

    Args:
        share: :math:`H` of :func:`traversal_heterogeneity`, shape ``(d, p)``.
        feature_shape: Grid shape ``(ny, nx)`` of the features, product ``p``.
        latent_names: One label per latent; default ``z0, z1, ...``.

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: Shapes or names that do not match ``share``.
    """
    from matplotlib.figure import Figure

    from .plots import bare_axes, panels

    h = as_matrix("share", share)
    names = list(latent_names) if latent_names is not None else [f"z{i}" for i in range(len(h))]
    if len(names) != h.shape[0]:
        raise ValueError(f"got {len(names)} latent names for {h.shape[0]} latents.")
    if feature_shape is None:
        fig = Figure(figsize=(min(12.0, 2.0 + 0.1 * h.shape[1]), 1.0 + 0.35 * h.shape[0]))
        ax = fig.add_subplot()
        im = ax.imshow(h, aspect="auto", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("feature")
        fig.colorbar(im, ax=ax, label="share of feature variance")
        fig.suptitle("latent traversal: share of each feature's variance per latent")
        return fig
    shape = tuple(int(s) for s in feature_shape)
    if len(shape) != 2 or shape[0] * shape[1] != h.shape[1]:
        raise ValueError(
            f"`feature_shape` must be (ny, nx) with ny * nx = {h.shape[1]} features, got "
            f"{feature_shape}."
        )
    fig, axes = panels(1, h.shape[0], 1.3)
    for i, ax in enumerate(axes[0]):
        ax.imshow(h[i].reshape(shape), origin="lower", vmin=0.0, vmax=1.0)
        ax.set_title(names[i], fontsize=8)
        bare_axes(ax)
    fig.suptitle("latent traversal: share of each feature's variance per latent")
    return fig


def _separation(name: str, weight: np.ndarray) -> float:
    """``1 - sum_p w_p H_p / log d`` of a non-negative ``weight (d, p)``; see below."""
    w = as_matrix(name, weight)
    if w.shape[0] < 2 or (w < 0).any() or not w.any():
        raise ValueError(
            f"`{name}` must be a non-negative (latent_dim, n_features) matrix with "
            f"latent_dim >= 2 and a positive entry, got shape {w.shape}."
        )
    total = w.sum(axis=0)
    moved = total > 0
    share = w[:, moved] / total[moved]
    logs = np.log(share, out=np.zeros_like(share), where=share > 0)
    entropy = -(share * logs).sum(axis=0) / np.log(w.shape[0])
    return float(1.0 - np.sum(total[moved] / total.sum() * entropy))


def separation_index(
    traversal_variance: np.ndarray | None = None, coef: np.ndarray | None = None
) -> float:
    r"""Latent space separation index (LSSI of [1]): one number in ``[0, 1]``.

    Both diagnostics give, for every feature :math:`p`, how much of its variance each
    latent :math:`i` accounts for: :math:`W_{ip} = V_{ip}` from
    :func:`traversal_heterogeneity`, and :math:`W_{ip} = B_{ip}^2` from
    :func:`~invprior.priors.dirty_regression.dirty_block_sparse_regression` (the variance
    a unit-variance latent contributes to a feature through a linear coefficient). With the shares
    :math:`P_{ip} = W_{ip} / \sum_l W_{lp}`, their normalised entropy
    :math:`h_p = -\sum_i P_{ip} \log P_{ip} / \log d` and feature weights
    :math:`w_p = \sum_i W_{ip} / \sum_{lq} W_{lq}` (features nothing moves drop out),

    .. math::
        \mathrm{sep}(W) = 1 - \sum_p w_p h_p,
        \qquad \mathrm{LSSI} = 	ext{mean of } \mathrm{sep}(W) 	ext{ over the inputs given}

    It is 1 when every feature is moved by one latent only and 0 when every feature is
    moved equally by all latents. Like DCI disentanglement (the same construction with
    factors in place of features) it does not reward using many latents: a generator whose
    only active latent moves everything scores 1; read it with the per-latent importance.
    To compare or average runs, align them first with :func:`align_latents`.

    Args:
        traversal_variance: :math:`V`, the ``"variance"`` of
            :func:`traversal_heterogeneity`, shape ``(d, p_1)``.
        coef: :math:`B`, the ``"coef"`` of
            :func:`~invprior.priors.dirty_regression.dirty_block_sparse_regression`, shape
            ``(d, p_2)``.

    Returns:
        The index in ``[0, 1]``.

    Raises:
        ValueError: Neither input given, different latent counts, fewer than two latents,
            negative variances, NaN/inf, or an all-zero matrix.

    Example:
        >>> round(separation_index(np.eye(3)), 6), round(separation_index(coef=np.ones((3, 4))), 6)
        (1.0, 0.0)
    """
    parts = []
    if traversal_variance is not None:
        parts.append(_separation("traversal_variance", traversal_variance))
    if coef is not None:
        parts.append(_separation("coef", np.square(as_matrix("coef", coef))))
    if not parts:
        raise ValueError("pass `traversal_variance`, `coef`, or both.")
    if len(parts) == 2 and np.shape(traversal_variance)[0] != np.shape(coef)[0]:
        raise ValueError(
            f"`traversal_variance` has {np.shape(traversal_variance)[0]} latents but `coef` "
            f"has {np.shape(coef)[0]}; pass diagnostics of the same generator."
        )
    return float(np.clip(np.mean(parts), 0.0, 1.0))


def _signed_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b``."""
    ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
    num = ac.T @ bc
    den = np.outer(np.linalg.norm(ac, axis=0), np.linalg.norm(bc, axis=0))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def align_latents(reference: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    r"""Greedy alignment of the latent coordinates of two runs (GAS of [1]).

    Both runs encode the same samples. With :math:`C_{ij} = \mathrm{corr}(r_i, o_j)` the
    Pearson correlation of reference coordinate :math:`i` and other coordinate :math:`j`,
    repeat :math:`d` times: take the unmatched pair with the largest :math:`|C_{ij}|`,
    match :math:`i 	o j` with sign :math:`\mathrm{sign}(C_{ij})`, and remove row
    :math:`i` and column :math:`j`. Greedy matching is not the optimal assignment
    (:func:`scipy.optimize.linear_sum_assignment`), but every strong, unambiguous pair is
    matched first, which is what undoing label switching needs. A constant coordinate
    correlates 0 with everything and is matched last.

    Args:
        reference: Codes of the reference run, shape ``(n, d)``.
        other: Codes of the other run on the same samples, shape ``(n, d)``.

    Returns:
        ``"permutation"`` (int) and ``"sign"`` (``+-1``), shape ``(d,)``, such that
        ``other[:, permutation] * sign`` is aligned with ``reference`` (and the rows of the
        other run's diagnostics reorder the same way); ``"correlation"``: the matched
        :math:`|C_{ij}|`, shape ``(d,)``, in reference order.

    Raises:
        ValueError: Shapes that differ, fewer than ten samples, or NaN/inf.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.standard_normal((100, 3))
        >>> out = align_latents(ref, np.column_stack([ref[:, 2], -ref[:, 0], ref[:, 1]]))
        >>> out["permutation"], out["sign"]
        (array([1, 2, 0]), array([-1.,  1.,  1.]))
    """
    r, o = as_matrix("reference", reference), as_matrix("other", other)
    if r.shape != o.shape or r.shape[0] < MIN_SAMPLES:
        raise ValueError(
            f"`reference` and `other` must have the same shape (n, d) with n >= "
            f"{MIN_SAMPLES} (codes of the same samples), got {r.shape} and {o.shape}."
        )
    corr = _signed_corr(r, o)
    free = np.abs(corr)
    d = r.shape[1]
    permutation, sign, matched = np.zeros(d, dtype=int), np.ones(d), np.zeros(d)
    for _ in range(d):
        i, j = np.unravel_index(np.argmax(free), free.shape)
        permutation[i], matched[i] = j, abs(corr[i, j])
        sign[i] = -1.0 if corr[i, j] < 0 else 1.0
        free[i, :], free[:, j] = -1.0, -1.0
    return {"permutation": permutation, "sign": sign, "correlation": matched}
