# SPDX-License-Identifier: MIT
r"""Sampling checks, summaries and the two-layer reading of a posterior DataTree.

Everything here reads a DataTree in the layout of :mod:`invprior.datatree` (or posterior
draws directly).

:func:`sampling_checks` holds the draws against ArviZ's recommendations (R-hat at most
1.01, bulk and tail ESS at least 100 per chain, no divergence, E-BFMI at least 0.3);
:func:`warn_sampling` turns each failed check into a :class:`SamplingWarning`, which the
MCMC converters of :mod:`invprior.datatree` issue unless told not to.

The posterior is read in two layers: the named physical parameters
(:func:`summarize_named`: mean, sd, 90% HDI, ESS, R-hat) and the residual block
(:func:`summarize_residual`), plus :func:`variance_decomposition`, the share of posterior
field variance carried by the named block versus ``z_rec``.

References:
    [1] A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Buerkner, "Rank-normalization,
        folding, and localization: an improved R-hat", Bayesian Analysis 16 (2021),
        https://arxiv.org/abs/1903.08008
    [2] M. Betancourt, "Diagnosing Suboptimal Cotangent Disintegrations in Hamiltonian
        Monte Carlo" (2016), https://arxiv.org/abs/1604.00695
    [3] I. M. Sobol', "Global sensitivity indices for nonlinear mathematical models and their
        Monte Carlo estimates", Math. Comput. Simul. 55 (2001),
        https://doi.org/10.1016/S0378-4754(00)00270-6
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import arviz_stats
import numpy as np
import pandas as pd
import torch
import xarray as xr

from .infer.common import seeded
from .model import InverseProblem
from .priors.arrays import to_numpy
from .sites import Z_AUX, Z_REC

__all__ = [
    "BFMI_MIN",
    "ESS_PER_CHAIN_MIN",
    "RHAT_MAX",
    "SamplingWarning",
    "VarianceDecomposition",
    "field_summary",
    "sampling_checks",
    "summarize_named",
    "summarize_residual",
    "variance_decomposition",
    "warn_sampling",
]

RHAT_MAX = 1.01
"""Largest acceptable rank-normalised split R-hat [1]."""

ESS_PER_CHAIN_MIN = 100
"""Fewest acceptable bulk and tail effective draws per chain [1]."""

BFMI_MIN = 0.3
"""Smallest acceptable E-BFMI of a chain [2]."""


class SamplingWarning(UserWarning):
    """A sampling diagnostic outside ArviZ's recommended range (see :func:`sampling_checks`)."""


# --- sampling checks ------------------------------------------------------------------------


def _checked_vars(tree: xr.DataTree) -> list[str]:
    """The posterior variables the checks look at: all but the deterministic ones."""
    deterministic = set(json.loads(tree.attrs.get("deterministic", "[]")))
    return [n for n in tree["posterior"].data_vars if n not in deterministic]


def sampling_checks(tree: xr.DataTree) -> dict[str, dict[str, object]]:
    """Each of ArviZ's recommended checks of MCMC draws, passed or not.

    ``rhat`` (largest rank-normalised split R-hat, bulk or folded, at most
    :data:`RHAT_MAX`), ``ess_bulk`` and ``ess_tail`` (smallest effective sample sizes, at
    least :data:`ESS_PER_CHAIN_MIN` per chain), ``divergences`` (none) and ``bfmi``
    (smallest E-BFMI of a chain, at least :data:`BFMI_MIN`) [1, 2], over the posterior
    variables that are not deterministic. A check that cannot be computed (a single chain
    for R-hat, no ``energy``) has a NaN value and ``passed`` None.

    Args:
        tree: A DataTree with ``posterior`` and ``sample_stats``.

    Returns:
        ``{check: {"value", "threshold", "passed", "variable"}}``; ``variable`` names
        the worst variable (for ``rhat``, ``ess_bulk``, ``ess_tail``).
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate draws give NaN
        return _checks(tree)


def _checks(tree: xr.DataTree) -> dict[str, dict[str, object]]:
    names = _checked_vars(tree)
    post = tree["posterior"]
    chains = post.sizes["chain"]
    checks: dict[str, dict[str, object]] = {}
    if chains > 1:
        rank = arviz_stats.rhat(tree, var_names=names, method="rank").dataset
        folded = arviz_stats.rhat(tree, var_names=names, method="folded").dataset
        rhat = np.maximum(rank, folded)
        value, var = _extreme(rhat, max)
    else:
        value, var = math.nan, None
    checks["rhat"] = _check(value, RHAT_MAX, value <= RHAT_MAX, var)
    for method in ("bulk", "tail"):
        ess = arviz_stats.ess(tree, var_names=names, method=method).dataset
        value, var = _extreme(ess, min)
        threshold = ESS_PER_CHAIN_MIN * chains
        checks[f"ess_{method}"] = _check(value, threshold, value >= threshold, var)
    stats = tree["sample_stats"]
    divergences = int(stats["diverging"].sum()) if "diverging" in stats.data_vars else 0
    checks["divergences"] = _check(float(divergences), 0, divergences == 0, None)
    if "energy" in stats.data_vars and np.isfinite(stats["energy"].values).all():
        bfmi = arviz_stats.bfmi(tree)["energy"].values
        value = float(np.min(bfmi))
    else:
        value = math.nan
    checks["bfmi"] = _check(value, BFMI_MIN, value >= BFMI_MIN, None)
    return checks


def _extreme(values: xr.Dataset, pick: Callable) -> tuple[float, str | None]:
    """``pick`` (min or max) over every value of every variable, and that variable."""
    per_var = {
        str(n): float(pick(np.asarray(v.values, dtype=float).reshape(-1)))
        for n, v in values.data_vars.items()
        if v.size
    }
    if not per_var:
        return math.nan, None
    if any(math.isnan(v) for v in per_var.values()):
        return math.nan, next(n for n, v in per_var.items() if math.isnan(v))
    var = pick(per_var, key=per_var.__getitem__)
    return per_var[var], var


def _check(value: float, threshold: float, passed: bool, variable: str | None) -> dict:
    return {
        "value": value,
        "threshold": threshold,
        "passed": None if math.isnan(value) else bool(passed),
        "variable": variable,
    }


_MESSAGES = {
    "rhat": "R-hat is {value:.3g} > {threshold} (worst: {variable}): the chains have not "
    "mixed; estimates are biased. Run longer chains or reparameterise.",
    "ess_bulk": "bulk ESS is {value:.0f} < {threshold} (100 per chain; worst: {variable}): "
    "posterior means and medians are unreliable. Draw more samples.",
    "ess_tail": "tail ESS is {value:.0f} < {threshold} (100 per chain; worst: {variable}): "
    "posterior intervals are unreliable. Draw more samples.",
    "divergences": "{value:.0f} divergent transitions: HMC could not explore the whole "
    "posterior. Raise target_accept_prob or reparameterise.",
    "bfmi": "E-BFMI is {value:.3g} < {threshold} in a chain: the momentum refresh explores "
    "the energy poorly. Reparameterise or adapt a dense mass matrix.",
}


def warn_sampling(checks: Mapping[str, Mapping[str, object]], stacklevel: int = 2) -> None:
    """Issue one :class:`SamplingWarning` per failed check of :func:`sampling_checks`.

    Args:
        checks: The checks.
        stacklevel: As for :func:`warnings.warn` (2: the caller of this function).
    """
    for name, check in checks.items():
        if check["passed"] is False:
            message = _MESSAGES[name].format(**check)
            warnings.warn(message, SamplingWarning, stacklevel=stacklevel + 1)


def _summary(tree: xr.DataTree, var_names: list[str], ci_prob: float) -> pd.DataFrame:
    return arviz_stats.summary(
        tree, var_names=var_names, ci_prob=ci_prob, ci_kind="hdi", round_to="none"
    )


def summarize_named(
    tree: xr.DataTree, names: list[str] | None = None, ci_prob: float = 0.9
) -> pd.DataFrame:
    """Summary of the named physical parameters: mean, sd, HDI, ESS, R-hat, MCSE.

    Args:
        tree: A DataTree from :func:`invprior.datatree.to_arviz`.
        names: Variables to summarise; default: the named variables recorded in the tree.
        ci_prob: Probability mass of the highest-density interval.

    Returns:
        One row per named variable (columns as ``arviz_stats.summary``).
    """
    names = names if names is not None else json.loads(tree.attrs["aux_names"])
    if not names:
        raise ValueError("the posterior has no named variables (a prior without aux sites)")
    return _summary(tree, names, ci_prob)


def summarize_residual(tree: xr.DataTree, ci_prob: float = 0.9) -> pd.DataFrame:
    """Summary of the residual block ``z_rec``, one row per coordinate."""
    return _summary(tree, [Z_REC], ci_prob)


def field_summary(field_samples: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """Pointwise posterior summaries of field draws on the grid.

    Args:
        field_samples: Draws, shape ``(*sample, ny, nx)`` (e.g. ``(chain, draw, ny, nx)``).

    Returns:
        ``mean``, ``std``, ``q05`` and ``q95``, each of shape ``(ny, nx)``.
    """
    x = to_numpy(field_samples)
    if x.ndim < 3:
        raise ValueError(f"field_samples must have shape (*sample, ny, nx), got {x.shape}")
    x = x.reshape(-1, *x.shape[-2:])
    q05, q95 = np.quantile(x, [0.05, 0.95], axis=0)
    return {"mean": x.mean(0), "std": x.std(0, ddof=1), "q05": q05, "q95": q95}


@dataclass(frozen=True)
class VarianceDecomposition:
    r"""Posterior field variance split by the law of total variance.

    Attributes:
        named_share: :math:`\sum_{ij} \mathrm{Var}(E[x_{ij} \mid z_{aux}]) / \sum_{ij}
            \mathrm{Var}(x_{ij})`, in ``[0, 1]``.
        residual_share: :math:`\sum_{ij} E[\mathrm{Var}(x_{ij} \mid z_{aux})] / \sum_{ij}
            \mathrm{Var}(x_{ij})`; the two shares add up to one.
        named_var: :math:`\mathrm{Var}(E[x \mid z_{aux}])` per grid node, shape ``(ny, nx)``.
        residual_var: :math:`E[\mathrm{Var}(x \mid z_{aux})]` per grid node, shape ``(ny, nx)``.
    """

    named_share: float
    residual_share: float
    named_var: np.ndarray
    residual_var: np.ndarray


def variance_decomposition(
    problem: InverseProblem,
    samples: Mapping[str, torch.Tensor],
    *,
    num_inner: int = 8,
    max_draws: int = 500,
    seed: int = 0,
) -> VarianceDecomposition:
    r"""Share of posterior field variance explained by the named block versus ``z_rec``.

    Law of total variance, per grid node:
    :math:`\mathrm{Var}(x) = \mathrm{Var}(E[x \mid z_{aux}]) + E[\mathrm{Var}(x \mid
    z_{aux})]`, with :math:`z_{aux} = a(u) + \tau e` carrying the named parameters.

    Estimator (a first-order Sobol index [3] under the product of the posterior marginals
    of ``z_aux`` and ``z_rec``): take ``S`` posterior draws (thinned to ``max_draws``); for
    each draw ``s`` decode :math:`G(z_{aux,s}, z_{rec,t})` for ``num_inner`` draws ``t`` of
    ``z_rec`` picked at random from the posterior draws; the inner mean estimates
    :math:`E[x \mid z_{aux,s}]`, the inner variance :math:`\mathrm{Var}(x \mid z_{aux,s})`.
    With the inner variance computed with ``ddof=1`` and the outer variance of the inner
    means reduced by its Monte Carlo bias (mean inner variance / ``num_inner``, floored at
    zero), both terms are unbiased and, within sampling error, add to the total variance.
    Posterior dependence between ``z_aux`` and ``z_rec`` is ignored by construction, which
    is the reading we want (how much does knowing the names pin down the field). Only
    decoder calls, no forward solve.

    Args:
        problem: The inverse problem (its prior's generator decodes).
        samples: Posterior draws with ``z_aux`` and ``z_rec``, shapes ``(*sample, d)`` and
            ``(*sample, r)`` (e.g. ``MCMCResult.samples``).
        num_inner: Inner draws of ``z_rec`` per outer draw (at least 2).
        max_draws: Outer draws used at most (evenly thinned).
        seed: Seed of the inner draws.

    Returns:
        The :class:`VarianceDecomposition`.
    """
    if num_inner < 2:
        raise ValueError(f"num_inner must be >= 2 to estimate a variance, got {num_inner}")
    gen = problem.prior.generator
    z_rec = samples[Z_REC].reshape(-1, gen.rec_dim)
    if Z_AUX in samples:
        z_aux = samples[Z_AUX].reshape(-1, gen.aux_dim)
    else:
        z_aux = z_rec.new_zeros(z_rec.shape[0], 0)
    keep = torch.linspace(0, z_rec.shape[0] - 1, min(max_draws, z_rec.shape[0])).round().long()
    z_aux, z_rec = z_aux[keep], z_rec[keep]
    num = z_rec.shape[0]
    with torch.no_grad(), seeded(seed, z_rec.device):
        inner = torch.randint(num, (num, num_inner), device=z_rec.device)
        fields = gen.decode(z_aux[:, None, :].expand(-1, num_inner, -1), z_rec[inner])
    fields = to_numpy(fields).astype(np.float64)  # (num, num_inner, ny, nx)
    within = fields.var(axis=1, ddof=1)
    residual_var = within.mean(0)
    named_var = np.maximum(fields.mean(axis=1).var(axis=0, ddof=1) - residual_var / num_inner, 0)
    if not gen.aux_dim:  # no named block: nothing to explain, only Monte Carlo noise above
        named_var = np.zeros_like(residual_var)
    total = named_var.sum() + residual_var.sum()
    share = float(named_var.sum() / total) if total > 0 else 0.0
    return VarianceDecomposition(
        named_share=share,
        residual_share=1.0 - share,
        named_var=named_var,
        residual_var=residual_var,
    )
