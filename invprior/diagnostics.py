# SPDX-License-Identifier: MIT
r"""Posterior results as ArviZ DataTrees, summaries and the two-layer reading.

This is the only module that imports ArviZ. ArviZ >= 1 has no Pyro converter, so
:func:`to_arviz` builds the DataTree with ``arviz_base.from_dict`` from an
:class:`invprior.infer.MCMCResult` (sample dimensions ``("chain", "draw")``).

The posterior is read in two layers: the named physical parameters
(:func:`summarize_named`: mean, sd, 90% HDI, ESS, R-hat) and the residual block
(:func:`summarize_residual`), plus :func:`variance_decomposition`, the share of posterior
field variance carried by the named block versus ``z_rec``.

References:
    [1] R. Kumar, C. Carroll, A. Hartikainen, O. Martin, "ArviZ a unified library for
        exploratory analysis of Bayesian models in Python", JOSS 4 (2019),
        https://doi.org/10.21105/joss.01143
    [2] A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Buerkner, "Rank-normalization,
        folding, and localization: an improved R-hat", Bayesian Analysis 16 (2021),
        https://arxiv.org/abs/1903.08008
    [3] I. M. Sobol', "Global sensitivity indices for nonlinear mathematical models and their
        Monte Carlo estimates", Math. Comput. Simul. 55 (2001),
        https://doi.org/10.1016/S0378-4754(00)00270-6
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import arviz_base
import arviz_stats
import numpy as np
import pandas as pd
import torch
import xarray as xr

from .fileio import atomic_path, json_text
from .infer.common import seeded
from .infer.mcmc import MCMCResult
from .model import InverseProblem
from .sites import AUX_NOISE, FIELD, OBS, Z_AUX, Z_REC

__all__ = [
    "VarianceDecomposition",
    "field_summary",
    "save_datatree",
    "summarize_named",
    "summarize_residual",
    "to_arviz",
    "variance_decomposition",
]

_STAT_NAMES = {"accept_prob": "acceptance_rate"}
"""Our per-draw statistic names that differ from ArviZ's conventions."""


def _numpy(value: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _grid_coords(problem: InverseProblem) -> dict[str, np.ndarray]:
    grid = problem.prior.generator.grid
    (x0, y0), (x1, y1) = grid.bbox
    return {"y": np.linspace(y0, y1, grid.shape[0]), "x": np.linspace(x0, x1, grid.shape[1])}


def _posterior_predictive(problem: InverseProblem, result: MCMCResult, seed: int) -> np.ndarray:
    r"""Replicated data :math:`y^{rep} \sim p(y \mid F(x_s))`, shape ``(chain, draw, n_obs)``.

    One forward solve per draw (batched per chain); fields are decoded when not stored.
    """
    reps = []
    with torch.no_grad(), seeded(seed, result.latent.device):
        for chain in range(result.latent.shape[0]):
            if FIELD in result.samples:
                field = result.samples[FIELD][chain]
            else:
                latent = {n: result.samples[n][chain] for n in problem.prior.latent_shapes}
                field = problem.prior.complete(latent)[FIELD]
            reps.append(problem.likelihood.distribution(problem.forward(field)).sample())
    return _numpy(torch.stack(reps))


def to_arviz(
    result: MCMCResult,
    problem: InverseProblem,
    obs: torch.Tensor | np.ndarray,
    *,
    sensor_coords: np.ndarray | None = None,
    include_field: bool = False,
    posterior_predictive: bool = True,
    truth: Mapping[str, torch.Tensor | np.ndarray | float] | None = None,
    seed: int = 0,
) -> xr.DataTree:
    """An ArviZ DataTree of an MCMC result.

    Groups: ``posterior`` (named sites in physical units, ``e_aux``, ``z_aux``, ``z_rec``,
    optionally ``field`` on ``(y, x)`` node coordinates), ``sample_stats`` (``diverging``,
    ``step_size``, ``n_steps``, ``acceptance_rate``, ``tree_depth`` for NUTS),
    ``posterior_predictive`` (``obs``), ``observed_data`` (``obs``) and ``constant_data``
    (``noise_std``, ``tau``, ``sensor_coords`` if given). Root attributes record the kernel,
    the named variables and their units, and per-chain PDE solves and wall times (JSON).

    Args:
        result: The MCMC result.
        problem: The inverse problem it samples.
        obs: Observed data, shape ``(n_obs,)``.
        sensor_coords: Sensor positions, shape ``(n_obs, 2)``.
        include_field: Store the field draws (``chain * draw * ny * nx`` values).
        posterior_predictive: Add replicated data (one forward solve per draw).
        truth: Known true values for synthetic studies, ``{site: value}`` (named variables,
            ``field`` of shape ``(ny, nx)``); stored in ``constant_data`` as ``true_<site>``.
        seed: Seed of the replicated noise.

    Returns:
        The DataTree.

    Raises:
        ValueError: If ``sensor_coords`` does not have shape ``(n_obs, 2)`` or the field
            was not stored but ``include_field`` is set.
    """
    obs = problem.check_obs(obs)
    prior = problem.prior
    names = list(prior.aux_names)
    posterior = {
        n: _numpy(result.samples[n]) for n in (*names, AUX_NOISE, Z_AUX) if n in result.samples
    }
    posterior[Z_REC] = _numpy(result.samples[Z_REC])
    if include_field:
        if FIELD not in result.samples:
            raise ValueError("the result holds no field draws; sample with store_field=True")
        posterior[FIELD] = _numpy(result.samples[FIELD])
    stats = {_STAT_NAMES.get(k, k): v for k, v in result.sample_stats.items()}
    constant = {
        "noise_std": _numpy(problem.likelihood.noise_std)
        if hasattr(problem.likelihood, "noise_std")
        else np.array(np.nan),
        "tau": np.array(prior.tau),
    }
    dims = {AUX_NOISE: ["aux"], Z_AUX: ["aux"], Z_REC: ["rec"], FIELD: ["y", "x"], OBS: ["sensor"]}
    for name, value in (truth or {}).items():
        constant[f"true_{name}"] = _numpy(value)
        dims[f"true_{name}"] = dims.get(name, [])
    if constant["noise_std"].ndim == 1 and constant["noise_std"].size > 1:
        dims["noise_std"] = ["sensor"]
    if sensor_coords is not None:
        sensor_coords = np.asarray(sensor_coords, dtype=float)
        if sensor_coords.shape != (problem.n_obs, 2):
            raise ValueError(
                f"sensor_coords has shape {sensor_coords.shape}; expected ({problem.n_obs}, 2)"
            )
        constant["sensor_coords"] = sensor_coords
        dims["sensor_coords"] = ["sensor", "xy"]
    data = {
        "posterior": posterior,
        "sample_stats": stats,
        "observed_data": {OBS: _numpy(obs)},
        "constant_data": constant,
    }
    if posterior_predictive:
        data["posterior_predictive"] = {OBS: _posterior_predictive(problem, result, seed)}
    attrs = {
        "kernel": result.kernel,
        "aux_names": json.dumps(names),
        "aux_units": json.dumps(list(getattr(prior.generator, "aux_units", ()))),
        "chain_stats": json_text(result.chain_stats),  # strict: a NaN step size is null
        "num_divergences": result.num_divergences,
    }
    coords = {**_grid_coords(problem), "xy": ["x", "y"], **({"aux": names} if names else {})}
    return arviz_base.from_dict(data, dims=dims, coords=coords, attrs={"/": attrs})


def save_datatree(tree: xr.DataTree, path: str | os.PathLike) -> Path:
    """Write a DataTree to NetCDF atomically (temporary file in the same folder, then rename).

    A reader never sees a half-written file, and an interrupted write leaves any previous
    file in place.

    Args:
        tree: The DataTree.
        path: Target file, conventionally ``*.nc``.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp)
    return path


def _summary(tree: xr.DataTree, var_names: list[str], ci_prob: float) -> pd.DataFrame:
    return arviz_stats.summary(
        tree, var_names=var_names, ci_prob=ci_prob, ci_kind="hdi", round_to="none"
    )


def summarize_named(
    tree: xr.DataTree, names: list[str] | None = None, ci_prob: float = 0.9
) -> pd.DataFrame:
    """Summary of the named physical parameters: mean, sd, HDI, ESS, R-hat, MCSE.

    Args:
        tree: A DataTree from :func:`to_arviz`.
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
    x = _numpy(field_samples)
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
    fields = _numpy(fields).astype(np.float64)  # (num, num_inner, ny, nx)
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
