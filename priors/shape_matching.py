# SPDX-License-Identifier: MIT
r"""Shape-matching disentanglement score: does a latent have the distribution of a factor?

A latent :math:`z_i` that encodes a factor :math:`u_j` faithfully, up to units, has the
same *marginal distribution* as :math:`u_j` after a scale and a shift. The score measures
this with the Kullback-Leibler divergence, minimised over the affine map:

.. math::
    D_{ji} = \min_{a \ne 0,\, b} \mathrm{KL}\big(p_{u_j} \,\|\, p_{a z_i + b}\big)

estimated from samples with the :math:`k`-nearest-neighbour estimator of [1]. It compares
marginals only, so it complements the correlation-based scores of
:mod:`invprior.priors.metrics`: a latent can correlate strongly with a factor and still
have a different shape (a uniform factor squashed through a saturating nonlinearity).

References:
    [1] Q. Wang, S. R. Kulkarni, S. Verdu. "Divergence Estimation for Multidimensional
        Densities Via k-Nearest-Neighbor Distances." IEEE Trans. Inf. Theory 55(5),
        2392-2405, 2009. https://doi.org/10.1109/TIT.2009.2016060
    [2] J. A. Nelder, R. Mead. "A Simplex Method for Function Minimization." The Computer
        Journal 7(4), 308-313, 1965. https://doi.org/10.1093/comjnl/7.4.308
"""

from __future__ import annotations

import numpy as np

from .arrays import check_pair

__all__ = ["knn_kl_divergence", "shape_matching_score"]

# Nelder-Mead's first simplex in (log|a|, b): steps of 0.3 (scale x1.35, shift 0.3 sd)
# instead of SciPy's 0.00025 for a zero start, which would take many steps to grow.
_SIMPLEX = np.array([[0.0, 0.0], [0.3, 0.0], [0.0, 0.3]])


def _kth_distance(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Distance from each ``query`` point to its ``k``-th nearest point of sorted ``reference``.

    In one dimension the ``k`` nearest neighbours of ``q`` are contiguous in the sorted
    sample and lie among the ``2k`` points around ``q``'s insertion position, so one
    ``searchsorted`` and a partial sort of ``2k`` candidates per query suffice.
    """
    pos = np.searchsorted(reference, query)
    idx = pos[:, None] + np.arange(-k, k)
    inside = (idx >= 0) & (idx < reference.size)
    dist = np.abs(reference[np.clip(idx, 0, reference.size - 1)] - query[:, None])
    dist[~inside] = np.inf
    return np.partition(dist, k - 1, axis=1)[:, k - 1]


def _knn_kl_sorted(x: np.ndarray, y: np.ndarray, k: int, rho: np.ndarray) -> float:
    """Eq. (5) of [1] in 1-D, for sorted ``x``, sorted ``y`` and precomputed ``rho``."""
    nu = _kth_distance(y, x, k)
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(nu) - np.log(rho)) + np.log(y.size / (x.size - 1)))


def knn_kl_divergence(x: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    r"""The :math:`k`-nearest-neighbour estimate of :math:`\mathrm{KL}(p \| q)` in 1-D, [1].

    With :math:`x_1..x_n \sim p` and :math:`y_1..y_m \sim q` independent,
    :math:`\rho_k(i)` the distance from :math:`x_i` to its :math:`k`-th nearest neighbour
    among the other :math:`x` and :math:`\nu_k(i)` the distance to its :math:`k`-th nearest
    neighbour among the :math:`y`, Eq. (5) of [1] with dimension :math:`d = 1` is

    .. math::
        \hat D(p \| q) = \frac{1}{n}\sum_{i=1}^{n} \log\frac{\nu_k(i)}{\rho_k(i)}
            + \log\frac{m}{n - 1}

    It is consistent as :math:`n, m \to \infty` for fixed :math:`k` and can be slightly
    negative on finite samples.

    Args:
        x: Samples of :math:`p`, shape ``(n,)``, ``n > k``, no value repeated ``k`` times.
        y: Samples of :math:`q`, shape ``(m,)``, ``m >= k``.
        k: Neighbour order; larger means less variance and more bias.

    Returns:
        The estimate, in nats.

    Raises:
        ValueError: Not 1-D, NaN/inf, too few samples, or ``k`` repeated values in ``x``
            (the estimator assumes continuous densities).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.standard_normal(4000), 2.0 * rng.standard_normal(4000)
        >>> exact = np.log(2.0) + 1 / 8 - 1 / 2  # KL(N(0, 1) || N(0, 4))
        >>> bool(abs(knn_kl_divergence(x, y) - exact) < 0.05)
        True
    """
    if k < 1:
        raise ValueError(f"`k` must be at least 1, got {k}.")
    xs, ys = np.sort(_as_vector("x", x)), np.sort(_as_vector("y", y))
    if xs.size <= k or ys.size < k:
        raise ValueError(
            f"need more than k={k} samples of `x` and at least k of `y`, got {xs.size} and "
            f"{ys.size}; lower `k` or pass more samples."
        )
    return _knn_kl_sorted(xs, ys, k, _self_distance("x", xs, k))


def _as_vector(name: str, array: np.ndarray) -> np.ndarray:
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"`{name}` holds NaN or infinite values; drop those samples.")
    return a


def _self_distance(name: str, xs: np.ndarray, k: int) -> np.ndarray:
    """Distance of each sorted ``xs`` to its ``k``-th nearest *other* point (rho_k)."""
    rho = _kth_distance(xs, xs, k + 1)  # the point itself is its own nearest neighbour
    if not (rho > 0).all():
        raise ValueError(
            f"`{name}` repeats a value at least {k + 1} times, so a k-th neighbour distance "
            "is 0 and the k-NN estimator is undefined; it needs continuous samples (raise "
            "`k` or jitter discrete factors)."
        )
    return rho


def _best_affine(
    x: np.ndarray, z: np.ndarray, k: int, rho: np.ndarray
) -> tuple[float, float, float]:
    r"""Minimise :math:`\hat D(x \| a z + b)` over :math:`(a, b)` by Nelder-Mead.

    ``x`` and ``z`` are sorted and standardised, so moment matching gives :math:`|a| = 1`,
    :math:`b = 0`. The sign of :math:`a` cannot be crossed continuously (:math:`a = 0`
    collapses the sample), so both signs are searched, with :math:`a = \pm e^{t}`.
    """
    from scipy.optimize import minimize

    best = (np.inf, 1.0, 0.0)
    for sign in (1.0, -1.0):

        def objective(theta: np.ndarray, sign: float = sign) -> float:
            scale = sign * np.exp(theta[0])
            y = scale * z + theta[1]
            return _knn_kl_sorted(x, y if sign > 0 else y[::-1], k, rho)

        res = minimize(
            objective,
            np.zeros(2),
            method="Nelder-Mead",
            options={"xatol": 1e-3, "fatol": 1e-5, "maxiter": 400, "initial_simplex": _SIMPLEX},
        )
        if res.fun < best[0]:
            best = (float(res.fun), float(sign * np.exp(res.x[0])), float(res.x[1]))
    return best


def shape_matching_score(
    factors: np.ndarray, latents: np.ndarray, k: int = 5, seed: int = 0
) -> dict[str, float | np.ndarray]:
    r"""Minimum KL between each factor and each scaled and shifted latent.

    Computed as follows.

    1. The rows are shuffled with ``seed`` and split in two halves; factors are read from
       the first half and latents from the second. The estimator of [1] needs independent
       samples of the two distributions, and on paired rows a latent that is an exact
       affine map of a factor would put a latent sample on top of every factor sample
       (:math:`\nu_k \to 0`, an estimate of :math:`-\infty`).
    2. Each factor column and each latent column is standardised to mean 0, variance 1
       (on its half), so every pair starts from a moment-matched fit.
    3. For every pair :math:`(j, i)`, :math:`\hat D(u_j \| a z_i + b)` of
       :func:`knn_kl_divergence` is minimised by Nelder-Mead [2] over
       :math:`(\log|a|, b)` from :math:`(0, 0)`, once with :math:`a > 0` and once with
       :math:`a < 0`; the smaller minimum is kept.
    4. Negative estimates (estimator noise, since KL is non-negative) are set to 0.

    The score is the mean over factors of the best match,
    :math:`S = \frac{1}{K}\sum_j \min_i D_{ji}` (nats, lower is better). It only asks
    whether *some* latent has each factor's shape; read it with a pairing score such as
    :func:`invprior.priors.metrics.lds`. Expect estimator noise of a few hundredths of a
    nat at :math:`n = 2000`.

    Args:
        factors: Ground-truth factors :math:`u`, shape ``(n, K)``, continuous.
        latents: Latent codes :math:`z`, shape ``(n, L)``.
        k: Neighbour order of the estimator; each half must hold more than ``k`` samples.
        seed: Seed of the row split; the result is a deterministic function of it.

    Returns:
        ``"kl"``: :math:`D`, shape ``(K, L)`` (``inf`` for a constant latent);
        ``"best_latent"``: :math:`\arg\min_i D_{ji}`, shape ``(K,)``;
        ``"scale"`` and ``"shift"``: the minimising :math:`a, b` in standardised units,
        shape ``(K, L)``; ``"score"``: :math:`S`.

    Raises:
        ValueError: ``k < 1``, too few samples for ``k``, a factor repeating a value more
            than ``k`` times in its half, or the checks of
            :func:`invprior.priors.metrics.lds`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> u = rng.uniform(size=(600, 1))
        >>> z = np.column_stack([3.0 * u[:, 0] - 1.0, rng.standard_normal(600)])
        >>> out = shape_matching_score(u, z)
        >>> int(out["best_latent"][0]), bool(out["kl"][0, 0] < 0.05 < out["kl"][0, 1])
        (0, True)
    """
    if k < 1:
        raise ValueError(f"`k` must be at least 1, got {k}.")
    f, z = check_pair(factors, latents)
    order = np.random.default_rng(seed).permutation(f.shape[0])
    half = f.shape[0] // 2
    if half <= k:
        raise ValueError(
            f"each half of the {f.shape[0]} samples must hold more than k={k}; pass at "
            f"least {2 * (k + 1)} samples or lower `k`."
        )
    f, z = f[order[:half]], z[order[half:]]
    n_f, n_z = f.shape[1], z.shape[1]
    kl, scale, shift = np.full((n_f, n_z), np.inf), np.ones((n_f, n_z)), np.zeros((n_f, n_z))
    z_std = z.std(axis=0)
    for j in range(n_f):
        x = np.sort((f[:, j] - f[:, j].mean()) / f[:, j].std())
        if x[0] == x[-1]:
            raise ValueError(
                f"factor column {j} is constant on its half of the samples; pass more samples."
            )
        rho = _self_distance(f"factors[:, {j}]", x, k)
        for i in np.flatnonzero(z_std > 0):
            zi = np.sort((z[:, i] - z[:, i].mean()) / z_std[i])
            kl[j, i], scale[j, i], shift[j, i] = _best_affine(x, zi, k, rho)
    kl = np.maximum(kl, 0.0)
    best = np.argmin(kl, axis=1)
    return {
        "kl": kl,
        "best_latent": best,
        "scale": scale,
        "shift": shift,
        "score": float(kl[np.arange(n_f), best].mean()),
    }
