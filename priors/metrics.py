# SPDX-License-Identifier: MIT
r"""Disentanglement and reconstruction metrics on held-out data.

Every metric compares ground-truth generative factors :math:`u` (the named physical
variables of a simulated data set) with latent codes :math:`z` (the encoder means of a
generator). Arrays are NumPy; ``factors`` has shape ``(n, n_factors)`` and ``latents``
shape ``(n, n_latents)``, one row per held-out sample. Only :func:`perturbation_importance`
and :func:`evaluate_generator` touch torch, because they run a :class:`Generator`.
scikit-learn and scikit-image are imported inside the functions that use them, so
importing :mod:`invprior.priors` stays fast.

References:
    [1] A. Ganguli, N. Ramachandra, J. Bessac, E. Constantinescu. "Enhancing Interpretability
        in Generative Modeling: Statistically Disentangled Latent Spaces Guided by Generative
        Factors in Scientific Datasets." https://arxiv.org/abs/2507.00298
    [2] A. Kumar, P. Sattigeri, A. Balakrishnan. "Variational Inference of Disentangled Latent
        Concepts from Unlabeled Observations." ICLR 2018. https://arxiv.org/abs/1711.00848
    [3] R. T. Q. Chen, X. Li, R. Grosse, D. Duvenaud. "Isolating Sources of Disentanglement in
        Variational Autoencoders." NeurIPS 2018. https://arxiv.org/abs/1802.04942
    [4] C. Eastwood, C. K. I. Williams. "A Framework for the Quantitative Evaluation of
        Disentangled Representations." ICLR 2018. https://openreview.net/forum?id=By-7dz-AZ
    [5] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli. "Image Quality Assessment: From
        Error Visibility to Structural Similarity." IEEE TIP 13(4), 2004.
        https://doi.org/10.1109/TIP.2003.819861
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import entropy

from .arrays import as_matrix, check_pair
from .base import Encoder, Generator
from .batched import decode_latents, encode_means, least_squares_latents

__all__ = [
    "abs_correlation",
    "dci",
    "evaluate_generator",
    "explicitness",
    "lds",
    "lds_ceiling",
    "lds_scores",
    "least_squares_projections",
    "mig",
    "perturbation_importance",
    "residual_readback_sd",
    "projection_errors",
    "sap",
    "ssim_scores",
]


def _require_columns(name: str, array: np.ndarray, minimum: int, why: str) -> None:
    if array.shape[1] < minimum:
        raise ValueError(f"`{name}` needs at least {minimum} columns {why}, got {array.shape[1]}.")


def abs_correlation(factors: np.ndarray, latents: np.ndarray) -> np.ndarray:
    r"""Absolute Pearson correlation between every factor and every latent.

    .. math::
        C_{jl} = \left|\frac{\mathrm{cov}(u_j, z_l)}{\sigma(u_j)\,\sigma(z_l)}\right|

    A constant latent (a collapsed dimension) has correlation 0 with every factor.

    Args:
        factors: Ground-truth factors :math:`u`, shape ``(n, n_factors)``.
        latents: Latent codes :math:`z`, shape ``(n, n_latents)``.

    Returns:
        :math:`C`, shape ``(n_factors, n_latents)``, entries in ``[0, 1]``.

    Raises:
        ValueError: See :func:`lds`.
    """
    return _abs_corr(*check_pair(factors, latents))


def _abs_corr(f: np.ndarray, z: np.ndarray) -> np.ndarray:
    """:func:`abs_correlation` of validated matrices."""
    fc = f - f.mean(axis=0)
    zc = z - z.mean(axis=0)
    num = fc.T @ zc
    den = np.outer(np.linalg.norm(fc, axis=0), np.linalg.norm(zc, axis=0))
    corr = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.clip(np.abs(corr), 0.0, 1.0)


def lds(factors: np.ndarray, latents: np.ndarray) -> float:
    r"""Latent disentanglement score, Eq. (10) of [1].

    .. math::
        \mathrm{LDS} = \frac{1}{K} \sum_{j=1}^{K}
            \frac{\max_l |\mathrm{corr}(u_j, z_l)|}{\sum_l |\mathrm{corr}(u_j, z_l)|}

    It is 1 when each factor correlates with exactly one latent and falls towards
    :math:`1/L` when a factor spreads evenly over all :math:`L` latents. On :math:`n`
    samples an independent pair still has :math:`E|\mathrm{corr}| \approx \sqrt{2/(\pi n)}`,
    so even a perfect code scores about :math:`1 / (1 + (L - 1)\sqrt{2/(\pi n)})`
    (0.95 for :math:`L = 4`, :math:`n = 2000`); compare codes of equal size on equal data.

    Args:
        factors: Ground-truth factors :math:`u`, shape ``(n, K)``.
        latents: Latent codes :math:`z`, shape ``(n, L)``; pass all latents to also
            penalise factor information leaking into the residual block.

    Returns:
        The score in ``[1/L, 1]``.

    Raises:
        ValueError: Mismatched rows, fewer than ten samples, NaN/inf, a constant factor,
            or all latents constant.
    """
    c = abs_correlation(factors, latents)
    ratio = c.max(axis=1) / np.maximum(c.sum(axis=1), np.finfo(np.float64).tiny)
    return float(ratio.mean())


def lds_ceiling(num_latents: int, n: int) -> float:
    r"""The LDS a perfect code reaches on ``n`` samples: :math:`1 / (1 + (L-1)\sqrt{2/(\pi n)})`.

    Each factor correlates fully with its own latent and, through sampling noise alone,
    with :math:`E|\mathrm{corr}| \approx \sqrt{2/(\pi n)}` with each of the
    :math:`L - 1` others (see :func:`lds`); an LDS is read against this ceiling.

    Args:
        num_latents: Number of latents :math:`L` the score is computed over.
        n: Number of samples.

    Example:
        >>> round(lds_ceiling(14, 20000), 3)
        0.932
    """
    return 1.0 / (1.0 + (num_latents - 1) * math.sqrt(2.0 / (math.pi * n)))


def lds_scores(factors: np.ndarray, mu: np.ndarray, aux_dim: int) -> dict[str, float | str]:
    r"""LDS of a generator's code, each beside the ceiling a perfect code reaches.

    ``lds`` scores the named factors against the auxiliary block :math:`\mu_{aux}` when it
    has at least two coordinates, and against all latents otherwise (a beta-VAE has no
    auxiliary block); ``scored_latents`` says which. ``lds_all`` scores them against all
    latents, so it also penalises named information leaking into :math:`z_{rec}`.
    ``lds_ceiling`` and ``lds_all_ceiling`` are :func:`lds_ceiling` for as many latents
    and samples. The ceiling is an expectation over samples; with few latents a sample's
    own chance correlations move it by as much as a good code's shortfall, so
    ``lds_of_factors`` also scores the named factors as their own code on this very
    sample (the perfect code's realised score when the scored block has one latent per
    factor).

    Args:
        factors: Named factors :math:`u`, shape ``(n, K)``.
        mu: Encoder means, auxiliary block first, shape ``(n, m)``.
        aux_dim: Size of the auxiliary block.

    Returns:
        ``scored_latents`` (``"aux"`` or ``"all"``), ``lds``, ``lds_ceiling``,
        ``lds_of_factors``, ``lds_all`` and ``lds_all_ceiling``.

    Raises:
        ValueError: See :func:`lds`.
    """
    code = mu[:, :aux_dim] if aux_dim >= 2 else mu
    n = factors.shape[0]
    return {
        "scored_latents": "aux" if aux_dim >= 2 else "all",
        "lds": lds(factors, code),
        "lds_ceiling": lds_ceiling(code.shape[1], n),
        "lds_of_factors": lds(factors, factors),
        "lds_all": lds(factors, mu),
        "lds_all_ceiling": lds_ceiling(mu.shape[1], n),
    }


def explicitness(factors: np.ndarray, latents_aux: np.ndarray) -> np.ndarray:
    r"""Explicitness [1]: how closely each named variable tracks its own latent coordinate.

    .. math:: E_j = |\mathrm{corr}(u_j, z_{aux,j})|

    Args:
        factors: Named factors :math:`u`, shape ``(n, d)``.
        latents_aux: The auxiliary block :math:`z_{aux}` in the same order, shape ``(n, d)``.

    Returns:
        :math:`E`, shape ``(d,)``, entries in ``[0, 1]``.

    Raises:
        ValueError: The two arrays have different numbers of columns, or see :func:`lds`.
    """
    c = abs_correlation(factors, latents_aux)
    if c.shape[0] != c.shape[1]:
        raise ValueError(
            f"explicitness pairs factor j with latent j, but got {c.shape[0]} factors and "
            f"{c.shape[1]} auxiliary latents; pass the z_aux block in aux_names order."
        )
    return np.diag(c).copy()


def sap(factors: np.ndarray, latents: np.ndarray) -> float:
    r"""Separated attribute predictability (SAP) for continuous factors of [2].

    The score matrix holds the :math:`R^2` of a one-variable linear regression of factor
    :math:`u_j` on latent :math:`z_l`, which for least squares with an intercept equals the
    squared Pearson correlation, :math:`S_{jl} = \mathrm{corr}(u_j, z_l)^2`. SAP is the mean
    gap between the two largest entries of each row:

    .. math:: \mathrm{SAP} = \frac{1}{K}\sum_j \big(S_{j,(1)} - S_{j,(2)}\big)

    Args:
        factors: Ground-truth factors, shape ``(n, K)``.
        latents: Latent codes, shape ``(n, L)`` with ``L >= 2``.

    Returns:
        The score in ``[0, 1]``.

    Raises:
        ValueError: Fewer than two latents, or see :func:`lds`.
    """
    f, z = check_pair(factors, latents)
    _require_columns("latents", z, 2, "for a gap")
    score = _abs_corr(f, z) ** 2
    top = np.sort(score, axis=1)[:, ::-1]
    return float((top[:, 0] - top[:, 1]).mean())


def _discretize(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Integer bin labels of each column of ``x (n, k)`` over ``n_bins`` equal-width bins."""
    out = np.empty(x.shape, dtype=np.int64)
    for k in range(x.shape[1]):
        edges = np.histogram_bin_edges(x[:, k], bins=n_bins)
        out[:, k] = np.digitize(x[:, k], edges[1:-1])
    return out


def mig(factors: np.ndarray, latents: np.ndarray, n_bins: int = 20) -> float:
    r"""Mutual information gap (MIG) of [3].

    Factors and latents are discretised into ``n_bins`` equal-width bins; with
    :math:`I` the discrete mutual information (:func:`sklearn.metrics.mutual_info_score`)
    and :math:`H(u_j) = I(u_j; u_j)`,

    .. math::
        \mathrm{MIG} = \frac{1}{K}\sum_j \frac{I(u_j; z_{(1)}) - I(u_j; z_{(2)})}{H(u_j)}

    where :math:`z_{(1)}, z_{(2)}` are the two latents with the most information about
    :math:`u_j`. The plug-in estimate is biased upwards by about
    :math:`(n_{bins}-1)^2 / 2n` nats, so use a few thousand samples.

    Args:
        factors: Ground-truth factors, shape ``(n, K)``.
        latents: Latent codes, shape ``(n, L)`` with ``L >= 2``.
        n_bins: Number of histogram bins per variable.

    Returns:
        The score in ``[0, 1]``.

    Raises:
        ValueError: ``n_bins < 2``, fewer than two latents, or see :func:`lds`.
    """
    from sklearn.metrics import mutual_info_score

    if n_bins < 2:
        raise ValueError(f"`n_bins` must be at least 2, got {n_bins}.")
    f, z = check_pair(factors, latents)
    _require_columns("latents", z, 2, "for a gap")
    fd, zd = _discretize(f, n_bins), _discretize(z, n_bins)
    gaps = np.empty(f.shape[1])
    for j in range(f.shape[1]):
        info = np.sort([mutual_info_score(fd[:, j], zd[:, k]) for k in range(z.shape[1])])
        gaps[j] = (info[-1] - info[-2]) / mutual_info_score(fd[:, j], fd[:, j])
    return float(gaps.mean())


def dci(
    factors: np.ndarray,
    latents: np.ndarray,
    *,
    n_estimators: int = 50,
    test_size: float = 0.25,
    seed: int = 0,
) -> dict[str, float | np.ndarray]:
    r"""Disentanglement, completeness and informativeness (DCI) of [4].

    One gradient-boosted tree regressor per factor predicts :math:`u_j` from all latents
    on a training split; its impurity-based feature importances form column :math:`j` of
    the importance matrix :math:`R` (shape ``(L, K)``). With
    :math:`P_{lj} = R_{lj} / \sum_k R_{lk}` and :math:`\tilde P_{lj} = R_{lj} / \sum_m R_{mj}`,

    .. math::
        D = \sum_l \rho_l \Big(1 + \sum_j P_{lj} \log_K P_{lj}\Big),\quad
        \rho_l = \frac{\sum_j R_{lj}}{\sum_{mj} R_{mj}},\qquad
        C = \frac{1}{K}\sum_j \Big(1 + \sum_l \tilde P_{lj} \log_L \tilde P_{lj}\Big)

    Informativeness is reported as the mean held-out :math:`R^2 = 1 - \mathrm{MSE}_j /
    \mathrm{Var}(u_j)`, i.e. one minus the normalised prediction error of [4] (higher is
    better).

    Args:
        factors: Ground-truth factors, shape ``(n, K)`` with ``K >= 2``.
        latents: Latent codes, shape ``(n, L)`` with ``L >= 2``.
        n_estimators: Boosting stages per regressor (small keeps it fast).
        test_size: Fraction of samples held out for informativeness.
        seed: Seed of the split and of the regressors.

    Returns:
        ``{"disentanglement", "completeness", "informativeness"}`` as floats and
        ``"importance"``, the matrix :math:`R` of shape ``(L, K)``.

    Raises:
        ValueError: Fewer than two factors or latents, or see :func:`lds`.
    """
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    f, z = check_pair(factors, latents)
    _require_columns("factors", f, 2, "for a base-K entropy")
    _require_columns("latents", z, 2, "for a base-L entropy")
    z_tr, z_te, f_tr, f_te = train_test_split(z, f, test_size=test_size, random_state=seed)
    importance = np.empty((z.shape[1], f.shape[1]))
    r2 = np.empty(f.shape[1])
    for j in range(f.shape[1]):
        model = GradientBoostingRegressor(
            n_estimators=n_estimators, max_depth=3, random_state=seed
        ).fit(z_tr, f_tr[:, j])
        importance[:, j] = model.feature_importances_
        r2[j] = model.score(z_te, f_te[:, j])
    rho = importance.sum(axis=1) / importance.sum()
    # A latent no tree splits on has an all-zero row; the offset keeps its entropy finite
    # (its weight rho is 0, so it does not change D).
    d_per_latent = 1.0 - entropy(importance.T + 1e-11, base=f.shape[1])
    c_per_factor = 1.0 - entropy(importance + 1e-11, base=z.shape[1])
    return {
        "disentanglement": float(np.sum(rho * d_per_latent)),
        "completeness": float(c_per_factor.mean()),
        "informativeness": float(r2.mean()),
        "importance": importance,
    }


def ssim_scores(truth: np.ndarray, recon: np.ndarray) -> np.ndarray:
    r"""Structural similarity of each reconstruction to its truth, [5].

    Computed by :func:`skimage.metrics.structural_similarity` with the data range of each
    true image, :math:`\max x - \min x`, so the score does not depend on the field's units.

    Args:
        truth: True fields, shape ``(*batch, ny, nx)`` with ``ny, nx >= 7``.
        recon: Reconstructions, same shape.

    Returns:
        SSIM per image, shape ``batch`` (1 means identical).

    Raises:
        ValueError: Different shapes, images smaller than 7x7, NaN/inf, or a constant truth
            image (its data range is 0).
    """
    from skimage.metrics import structural_similarity

    t = np.asarray(truth, dtype=np.float64)
    r = np.asarray(recon, dtype=np.float64)
    if t.shape != r.shape or t.ndim < 2:
        raise ValueError(
            f"`truth` and `recon` must both have shape (*batch, ny, nx); got {t.shape} and "
            f"{r.shape}."
        )
    if min(t.shape[-2:]) < 7:
        raise ValueError(f"SSIM uses a 7x7 window; images must be at least 7x7, got {t.shape}.")
    if not (np.isfinite(t).all() and np.isfinite(r).all()):
        raise ValueError("`truth` or `recon` holds NaN or infinite values.")
    flat_t = t.reshape(-1, *t.shape[-2:])
    flat_r = r.reshape(-1, *r.shape[-2:])
    ranges = np.ptp(flat_t, axis=(1, 2))
    if (ranges == 0).any():
        raise ValueError(
            f"true image(s) {np.flatnonzero(ranges == 0).tolist()} are constant, so SSIM's "
            "data range is 0; drop them."
        )
    scores = [
        structural_similarity(a, b, data_range=dr)
        for a, b, dr in zip(flat_t, flat_r, ranges, strict=True)
    ]
    return np.asarray(scores).reshape(t.shape[:-2])


def perturbation_importance(
    generator: Generator,
    z_aux: np.ndarray,
    z_rec: np.ndarray,
    scale: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    r"""SSIM drop when one latent block is perturbed, the importance test of [1].

    With :math:`x = G(z_{aux}, z_{rec})` and :math:`\epsilon \sim N(0, \mathrm{scale}^2 I)`,

    .. math::
        \Delta_{aux} = 1 - \mathrm{SSIM}(x, G(z_{aux} + \epsilon, z_{rec})),\qquad
        \Delta_{rec} = 1 - \mathrm{SSIM}(x, G(z_{aux}, z_{rec} + \epsilon))

    averaged over samples. A block the generator ignores has a drop near 0.

    Args:
        generator: The generator, decoded without gradients in its current mode.
        z_aux: Auxiliary latents, shape ``(n, aux_dim)`` (``(n, 0)`` when there are none).
        z_rec: Residual latents, shape ``(n, rec_dim)``.
        scale: Standard deviation of the perturbation.
        seed: Seed of the perturbation (NumPy, so independent of the device).
        batch_size: Samples decoded at once.

    Returns:
        ``{"aux": mean drop, "rec": mean drop}``, omitting a block of size 0.

    Raises:
        ValueError: Shapes that do not match the generator, ``scale <= 0``, or NaN/inf.
    """
    za = as_matrix("z_aux", z_aux)
    zr = as_matrix("z_rec", z_rec)
    if za.shape != (zr.shape[0], generator.aux_dim) or zr.shape[1] != generator.rec_dim:
        raise ValueError(
            f"expected z_aux (n, {generator.aux_dim}) and z_rec (n, {generator.rec_dim}) for "
            f"this generator, got {za.shape} and {zr.shape}."
        )
    if not scale > 0:
        raise ValueError(f"`scale` must be positive, got {scale}.")
    rng = np.random.default_rng(seed)
    z = np.concatenate([za, zr], axis=1)
    base = decode_latents(generator, z, batch_size)
    blocks = {"aux": slice(0, za.shape[1]), "rec": slice(za.shape[1], z.shape[1])}
    drops = {}
    for name, cols in blocks.items():
        if cols.stop == cols.start:
            continue
        zp = z.copy()
        zp[:, cols] += scale * rng.standard_normal((z.shape[0], cols.stop - cols.start))
        drops[name] = float(
            np.mean(1.0 - ssim_scores(base, decode_latents(generator, zp, batch_size)))
        )
    return drops


def residual_readback_sd(
    generator: Generator,
    z_aux: np.ndarray,
    draws: int = 8,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    r"""How far a fresh residual block moves the named features, as the encoder reads them.

    For each named latent :math:`z_{aux}` the fields :math:`G(z_{aux}, \epsilon_k)`,
    :math:`\epsilon_k \sim N(0, I)`, ``k = 1..draws``, are encoded and the named block of
    their means is mapped to physical units; the result is, per named variable, the median
    over the latents of the standard deviation over :math:`k`. A decoder whose residual
    block leaves the named features alone scores about the encoder's own read-out error;
    one whose residual block can move them (a source's position, say) scores more, and a
    posterior can then trade the named latent off against residual coordinates while the
    field stays put, so the named intervals widen whatever the link :math:`\tau`. The
    decoder consistency term of training
    (:func:`~invprior.priors.train.named_consistency`) penalises the same read-back.

    Args:
        generator: A generator with an encoder and a named block, in its current mode.
        z_aux: Named latents, shape ``(n, aux_dim)`` (the encoder means of held-out
            fields, say).
        draws: Residual blocks drawn per latent (at least 2).
        seed: Seed of the residual blocks (NumPy, so independent of the device).
        batch_size: Samples decoded or encoded at once.

    Returns:
        ``{name: standard deviation in the variable's physical unit}``.

    Raises:
        TypeError: The generator has no encoder.
        ValueError: ``z_aux`` of the wrong shape, a generator without a named block, or
            ``draws < 2``.
    """
    if not isinstance(generator, Encoder):
        raise TypeError(f"{type(generator).__name__} has no encoder to read the fields back")
    za = as_matrix("z_aux", z_aux)
    d = generator.aux_dim
    if d == 0 or za.shape[1] != d:
        raise ValueError(
            f"z_aux must have the generator's {d} named columns (and it must have some), "
            f"got shape {za.shape}"
        )
    if draws < 2:
        raise ValueError(f"`draws` must be at least 2, got {draws}")
    rng = np.random.default_rng(seed)
    reads = []
    for _ in range(draws):
        z_rec = rng.standard_normal((len(za), generator.rec_dim))
        fields = decode_latents(generator, np.concatenate([za, z_rec], axis=1), batch_size)
        reads.append(encode_means(generator, fields, batch_size)[:, :d])
    scale = generator.aux_std.detach().cpu().numpy().astype(np.float64)
    spread = np.median(np.std(np.stack(reads), axis=0, ddof=1), axis=0) * scale
    return {name: float(v) for name, v in zip(generator.aux_names, spread, strict=True)}


#: L-BFGS iterations of :func:`projection_errors`.
PROJECTION_STEPS = 500


def least_squares_projections(
    generator: Generator, fields: np.ndarray, steps: int = PROJECTION_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    r"""Each field's least-squares projection onto the generator's range: latent and error.

    :math:`\hat z = \arg\min_z \|G(z) - x\|` for every field :math:`x`, by ``steps`` L-BFGS
    iterations from the encoder's mean (from the origin for a generator without an
    encoder; a flow along its noise-free path,
    :func:`invprior.priors.batched.least_squares_latents`), one field at a time so that no
    field's line search is shared with another's, and the relative L2 error
    :math:`\|G(\hat z) - x\| / \|x\|`. No posterior mean of fields from :math:`G` comes
    closer to :math:`x` than the range does, up to averaging: the part of an inversion's
    field error that the generator's accuracy sets, where SSIM of the encoder's
    reconstructions also counts the encoder's own error. The named block of
    :math:`\hat z` read through the link (``generator.to_physical``) is where the best fit
    puts the named factors, with no prior to hold them.

    Args:
        generator: The generator, in its current mode.
        fields: Fields on the generator's grid, shape ``(n, ny, nx)``.
        steps: L-BFGS iterations per field.

    Returns:
        The latents, float64, shape ``(n, aux_dim + rec_dim)``, and the relative errors,
        shape ``(n,)``.
    """
    x = np.asarray(fields, dtype=np.float64)
    if isinstance(generator, Encoder):
        start = encode_means(generator, x)
    else:
        start = np.zeros((len(x), generator.aux_dim + generator.rec_dim))
    latents = least_squares_latents(generator, x, start, steps, 1)
    best = decode_latents(generator, latents)
    errors = np.linalg.norm((best - x).reshape(len(x), -1), axis=1) / np.linalg.norm(
        x.reshape(len(x), -1), axis=1
    )
    return latents, errors


def projection_errors(
    generator: Generator, fields: np.ndarray, steps: int = PROJECTION_STEPS
) -> np.ndarray:
    """The relative errors of :func:`least_squares_projections`, shape ``(n,)``."""
    return least_squares_projections(generator, fields, steps)[1]


def evaluate_generator(
    generator: Generator,
    dataset_fields: np.ndarray,
    dataset_aux: np.ndarray,
    aux_names: Sequence[str] | None = None,
    *,
    n_perturb: int = 256,
    perturb_scale: float = 1.0,
    n_projection: int = 50,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float | str | dict[str, float]]:
    r"""All metrics of a generator with an encoder on a held-out data set.

    The fields are encoded to their means :math:`\mu = (\mu_{aux}, \mu_{rec})` by
    ``generator.encode(x) -> (mu, logvar)`` and decoded back for SSIM. SAP, MIG and DCI
    score the block that LDS scores (:func:`lds_scores`: the auxiliary block when it has
    at least two coordinates, else all latents); ``lds_all`` scores all latents for every
    generator, so generators with and without an auxiliary block compare fairly. Read
    each LDS against its ceiling beside it.

    Args:
        generator: A :class:`Generator` with an encoder (an :class:`Encoder`); not
            modified.
        dataset_fields: Held-out fields on the generator's grid, shape ``(n, ny, nx)``.
        dataset_aux: Their named factors :math:`u`, shape ``(n, K)``; for a generator with
            ``aux_dim > 0`` they must be its ``aux_names`` in order (``K = aux_dim``).
        aux_names: Names of the factor columns; checked against ``generator.aux_names`` when
            it has any. Defaults to the generator's names, else ``u0, u1, ...``.
        n_perturb: Samples used in the perturbation test (the first ones).
        perturb_scale: Standard deviation of the perturbation.
        n_projection: Fields (the first ones) whose least-squares projection onto the
            generator's range is scored (:func:`projection_errors`, about a second per
            field for a 64 x 64 Aux-VAE on one core).
        seed: Seed of the DCI split and of the perturbation.
        batch_size: Samples encoded or decoded at once.

    Returns:
        ``lds``, ``sap``, ``mig``, ``dci_disentanglement``, ``dci_completeness``,
        ``dci_informativeness``, ``ssim_median``, ``ssim_mean``, ``perturbation_ssim_drop``
        (``{"aux", "rec"}``), ``lds_all``, ``scored_latents`` (``"aux"`` or ``"all"``), ``n``,
        ``lds_ceiling``, ``lds_all_ceiling``, ``lds_of_factors``,
        ``projection_error_median`` and ``n_projection``;
        with an auxiliary block also ``explicitness`` (``{name: |corr(u_j, mu_aux_j)|}``)
        and ``residual_readback_sd`` (:func:`residual_readback_sd` on the first
        ``n_perturb`` fields' named means, physical units) and ``link_sd`` (the link's
        :math:`\tau s_j`, the same units) to read it against.
        All values are JSON-ready.

    Raises:
        TypeError: The generator is not an :class:`Encoder`.
        ValueError: Shapes or names that do not match the generator, or see :func:`lds`.
    """
    if not isinstance(generator, Encoder):
        raise TypeError(
            f"{type(generator).__name__} has no `encode(x) -> (mu, logvar)`; held-out "
            "metrics need an encoder (a VAE-type generator)."
        )
    fields = np.asarray(dataset_fields)
    factors = as_matrix("dataset_aux", dataset_aux)
    names = _factor_names(generator, factors, aux_names)
    if n_perturb < 1:
        raise ValueError(f"`n_perturb` must be at least 1, got {n_perturb}.")
    if n_projection < 1:
        raise ValueError(f"`n_projection` must be at least 1, got {n_projection}.")
    if fields.shape != (factors.shape[0], *generator.grid.shape):
        raise ValueError(
            f"`dataset_fields` must have shape ({factors.shape[0]}, "
            f"{', '.join(map(str, generator.grid.shape))}) (one field per row of "
            f"`dataset_aux` on the generator's grid), got {fields.shape}."
        )
    was_training = generator.training
    generator.eval()
    try:
        mu = encode_means(generator, fields, batch_size)
        recon = decode_latents(generator, mu, batch_size)
        d = generator.aux_dim
        z = mu[:n_perturb]
        drops = perturbation_importance(
            generator, z[:, :d], z[:, d:], perturb_scale, seed, batch_size
        )
        projection = projection_errors(generator, fields[:n_projection])
        readback = residual_readback_sd(generator, z[:, :d], seed=seed) if d else None
    finally:
        generator.train(was_training)
    out = _summarise(factors, mu, names, generator.aux_dim, fields, recon, drops, seed)
    out["projection_error_median"] = float(np.median(projection))
    out["n_projection"] = len(projection)
    if readback is not None:
        std = generator.aux_std.detach().cpu().numpy().astype(np.float64)
        out["residual_readback_sd"] = readback
        out["link_sd"] = {k: float(generator.tau * v) for k, v in zip(names, std, strict=True)}
    return out


def _factor_names(
    generator: Generator, factors: np.ndarray, aux_names: Sequence[str] | None
) -> tuple[str, ...]:
    """The factor names, checked against the generator's auxiliary block."""
    gen_names = tuple(generator.aux_names)
    if gen_names:
        if factors.shape[1] != len(gen_names):
            raise ValueError(
                f"the generator has named variables {list(gen_names)} but `dataset_aux` has "
                f"{factors.shape[1]} columns; pass its factors in that order."
            )
        if aux_names is not None and tuple(aux_names) != gen_names:
            raise ValueError(
                f"`aux_names` {list(aux_names)} differ from the generator's "
                f"{list(gen_names)}; reorder the data set's columns to match."
            )
        return gen_names
    if aux_names is None:
        return tuple(f"u{j}" for j in range(factors.shape[1]))
    if len(aux_names) != factors.shape[1]:
        raise ValueError(
            f"got {len(aux_names)} `aux_names` for {factors.shape[1]} factor columns."
        )
    return tuple(aux_names)


def _summarise(
    factors: np.ndarray,
    mu: np.ndarray,
    names: tuple[str, ...],
    aux_dim: int,
    fields: np.ndarray,
    recon: np.ndarray,
    drops: dict[str, float],
    seed: int,
) -> dict[str, float | str | dict[str, float]]:
    """Collect the metrics of :func:`evaluate_generator` into one JSON-ready dict."""
    scores = ssim_scores(fields, recon)
    code = mu[:, :aux_dim] if aux_dim >= 2 else mu
    d = dci(factors, code, seed=seed)
    out: dict[str, float | str | dict[str, float]] = {
        "n": int(factors.shape[0]),
        **lds_scores(factors, mu, aux_dim),
        "sap": sap(factors, code),
        "mig": mig(factors, code),
        "dci_disentanglement": d["disentanglement"],
        "dci_completeness": d["completeness"],
        "dci_informativeness": d["informativeness"],
        "ssim_median": float(np.median(scores)),
        "ssim_mean": float(np.mean(scores)),
        "perturbation_ssim_drop": drops,
    }
    if aux_dim:
        e = explicitness(factors, mu[:, :aux_dim])
        out["explicitness"] = {name: float(v) for name, v in zip(names, e, strict=True)}
    return out
