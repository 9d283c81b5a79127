# SPDX-License-Identifier: MIT
r"""Study reports from a posterior DataTree: metrics, text summary and figures.

Everything reads a DataTree built by :func:`invprior.datatree.to_arviz` (with
``include_field=True`` and, for synthetic studies, ``truth``), so a saved study can be
redrawn without rerunning it (``invprior report RESULTS_DIR``). Figures are
:class:`matplotlib.figure.Figure` objects built without pyplot (no backend is selected
here); only :func:`write_report` writes files, each atomically.

Metrics, with :math:`\bar x` the posterior mean field and :math:`x^\star` the truth:

- ``rel_l2_error`` :math:`= \|\bar x - x^\star\|_2 / \|x^\star\|_2` over the grid nodes;
- ``coverage_90``: fraction of grid nodes whose truth lies in the pointwise 5-95% band;
- ``named_abs_error``: :math:`|E[u_j \mid y] - u_j^\star|` per named variable, and
  ``named_in_hdi90``: whether :math:`u_j^\star` lies in the 90% HDI
  (:func:`named_scores`);
- ``ess_min`` (bulk) and ``rhat_max`` over the named variables and ``z_rec``;
- ``checks``: each of ArviZ's recommended sampling checks
  (:func:`invprior.diagnostics.sampling_checks`: ``rhat``, ``ess_bulk``, ``ess_tail``,
  ``divergences``, ``bfmi``), with its value, threshold, whether it passed and the worst
  variable;
- ``divergences``, and the sampling's ``sampling_pde_solves`` and ``sampling_wall_s``,
  summed over the chains (a study's JSON line adds ``pde_solves`` and ``wall_s`` of the
  whole study, see :func:`invprior.study.run_study`);
- ``gp_rel_l2_error`` and ``gp_coverage_90``: the same two field scores of the Gaussian
  baseline, when the tree has a ``baseline`` group (see :func:`invprior.study.gp_baseline`);
- ``ppc_coverage_90`` and ``ppc_p_values``: posterior predictive checks against the data
  (:func:`predictive_checks`), with or without a truth;
- ``noise_std_posterior``: mean, sd and 90% HDI of the noise std where it is a site
  (an unknown noise level); the site then also counts in ``ess_min`` and ``rhat_max``.

The truth-based scores (``rel_l2_error``, ``coverage_90``, ``named_*``, ``gp_*``) are
left out when the tree holds no truth (a study on measured data); nothing else needs it.

The metrics are written as strict JSON (:func:`invprior.fileio.json_text`): a metric that
is not finite, such as ``rhat_max`` of a single chain, is ``null``, and a sibling
``<metric>_note`` says why (``"rhat_max_note": "not finite: nan"``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import arviz_stats
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .diagnostics import field_summary, sampling_checks, summarize_named, summarize_residual
from .fileio import json_text, save_figure, write_json, write_text
from .sites import FIELD, NOISE_STD, OBS, Z_REC

__all__ = [
    "BASELINE",
    "field_maps",
    "field_scores",
    "named_scores",
    "plot_fields",
    "plot_pair",
    "plot_traces",
    "predictive_checks",
    "study_metrics",
    "text_summary",
    "write_report",
]

BASELINE = "baseline"
"""DataTree group holding the output of :func:`invprior.study.gp_baseline`."""


def _names(tree: xr.DataTree) -> list[str]:
    return json.loads(tree.attrs["aux_names"])


def _truth(tree: xr.DataTree, name: str) -> np.ndarray | None:
    const = tree["constant_data"]
    key = f"true_{name}"
    return const[key].values if key in const.data_vars else None


def _field_draws(tree: xr.DataTree) -> np.ndarray:
    post = tree["posterior"]
    if FIELD not in post.data_vars:
        raise ValueError("the posterior holds no field draws; build it with include_field=True")
    return post[FIELD].values


def field_maps(tree: xr.DataTree) -> dict[str, np.ndarray]:
    """Pointwise field summaries on the grid, each of shape ``(ny, nx)``.

    Keys: ``posterior_mean``, ``posterior_std``, ``posterior_q05``, ``posterior_q95``, then
    ``truth`` when known and ``gp_mean``, ``gp_std``, ``gp_q05``, ``gp_q95`` when the tree
    has a ``baseline`` group.

    Args:
        tree: A DataTree from :func:`invprior.datatree.to_arviz` with field draws.
    """
    maps = {f"posterior_{k}": v for k, v in field_summary(_field_draws(tree)).items()}
    if (true_field := _truth(tree, FIELD)) is not None:
        maps["truth"] = true_field
    if BASELINE in tree.children:
        base = tree[BASELINE]
        maps.update({f"gp_{k}": base[k].values for k in ("mean", "std", "q05", "q95")})
    return maps


def field_scores(maps: dict[str, np.ndarray], prefix: str) -> dict[str, float]:
    r"""Relative L2 error of a posterior mean and the 90% band's coverage of the truth.

    ``rel_l2_error`` is :math:`\|\bar x - x^*\|_2 / \|x^*\|_2` over the grid and
    ``coverage_90`` the share of grid nodes with :math:`q_{05} \le x^* \le q_{95}`.

    Args:
        maps: Grid maps with ``truth`` and ``{prefix}_mean``, ``{prefix}_q05``,
            ``{prefix}_q95``.
        prefix: Prefix of the posterior's maps.
    """
    truth = maps["truth"]
    mean, lo, hi = (maps[f"{prefix}_{k}"] for k in ("mean", "q05", "q95"))
    return {
        "rel_l2_error": float(np.linalg.norm(mean - truth) / np.linalg.norm(truth)),
        "coverage_90": float(((lo <= truth) & (truth <= hi)).mean()),
    }


#: Kinds of the 90% interval of :func:`named_scores`.
NAMED_INTERVALS = ("hdi", "central")


def named_scores(
    draws: Mapping[str, np.ndarray], truth: Mapping[str, float], interval: str = "hdi"
) -> dict[str, dict[str, float | bool]]:
    r"""Absolute error of the posterior mean and 90% interval hit of each named variable.

    For each variable :math:`u_j`: ``abs_error`` :math:`= |E[u_j \mid y] - u_j^\star|`
    (the mean of the draws) and ``in_90``, whether :math:`u_j^\star` lies in the 90%
    interval of the draws: the highest-density interval (``"hdi"``,
    :func:`arviz_stats.hdi`, pooling the chains; the ``named_in_hdi90`` of
    :func:`study_metrics`) or the central interval between the 5% and 95% quantiles
    (``"central"``, :func:`numpy.quantile`).

    Args:
        draws: ``{name: draws}``, each of shape ``(chain, draw)`` or ``(draw,)``.
        truth: ``{name: true value}`` for every name of ``draws``.
        interval: ``"hdi"`` or ``"central"``.

    Returns:
        ``{"abs_error": {name: float}, "in_90": {name: bool}}``.

    Raises:
        ValueError: An unknown ``interval``, or a name of ``draws`` missing from ``truth``.

    Example:
        >>> draws = {"x0": np.array([0.0, 1.0, 2.0, 3.0, 4.0])}
        >>> named_scores(draws, {"x0": 4.0}, "central")  # central interval [0.2, 3.8]
        {'abs_error': {'x0': 2.0}, 'in_90': {'x0': False}}
    """
    if interval not in NAMED_INTERVALS:
        raise ValueError(f"interval must be one of {NAMED_INTERVALS}, got {interval!r}")
    if missing := [name for name in draws if name not in truth]:
        raise ValueError(f"truth has no value for {missing}; pass one for every named draw")
    out: dict[str, dict[str, float | bool]] = {"abs_error": {}, "in_90": {}}
    for name, values in draws.items():
        x = np.asarray(values)
        if interval == "hdi":
            lo, hi = arviz_stats.hdi(xr.DataArray(np.atleast_2d(x), dims=("chain", "draw")), 0.9)
        else:
            lo, hi = np.quantile(x, [0.05, 0.95])
        out["abs_error"][name] = float(abs(x.mean() - truth[name]))
        out["in_90"][name] = bool(lo <= truth[name] <= hi)
    return out


#: Statistics of the data vector whose posterior predictive p-values the report gives.
PPC_STATISTICS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}


def predictive_checks(tree: xr.DataTree) -> dict[str, object]:
    r"""Posterior predictive checks of the observed data :math:`y` against replicates.

    ``ppc_coverage_90`` is the share of observations inside the pointwise 5-95% band of
    the replicated data :math:`y^{rep}` (about 0.9 when the model fits); ``ppc_p_values``
    maps each statistic :math:`T` of :data:`PPC_STATISTICS` (over the sensors) to the
    posterior predictive p-value :math:`P(T(y^{rep}) \ge T(y) \mid y)`: values near 0
    or 1 say the model does not reproduce that feature of the data.

    Args:
        tree: A DataTree with ``observed_data`` and ``posterior_predictive`` groups.

    Returns:
        ``{"ppc_coverage_90": float, "ppc_p_values": {name: float}}``, or ``{}`` when the
        tree has no replicated data.
    """
    if "posterior_predictive" not in tree.children:
        return {}
    obs = tree["observed_data"][OBS].values
    rep = tree["posterior_predictive"][OBS].values.reshape(-1, obs.size)
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    return {
        "ppc_coverage_90": float(((lo <= obs) & (obs <= hi)).mean()),
        "ppc_p_values": {
            name: float((stat(rep, axis=1) >= stat(obs)).mean())
            for name, stat in PPC_STATISTICS.items()
        },
    }


def _noise_site(tree: xr.DataTree) -> bool:
    """Whether the noise std is a site of the posterior (an unknown noise level)."""
    return NOISE_STD in tree["posterior"].data_vars


def study_metrics(tree: xr.DataTree) -> dict[str, object]:
    """The study's headline numbers (see the module docstring); truth-based ones need truth.

    Args:
        tree: A DataTree from :func:`invprior.datatree.to_arviz` with field draws.

    Returns:
        A JSON-serialisable dict.
    """
    names = _names(tree)
    tables = [summarize_residual(tree)] + ([summarize_named(tree)] if names else [])
    if _noise_site(tree):
        tables.append(noise := summarize_named(tree, [NOISE_STD]))
    ess = min(float(t["ess_bulk"].min()) for t in tables)
    rhat = max(float(t["r_hat"].max()) for t in tables)
    chains = json.loads(tree.attrs["chain_stats"])
    solves = [c["pde_solves"] for c in chains]
    metrics: dict[str, object] = {
        "ess_min": ess,
        "rhat_max": rhat,
        "divergences": int(tree.attrs["num_divergences"]),
        "sampling_pde_solves": (
            None if None in solves else sum(s["forward"] + s["adjoint"] for s in solves)
        ),
        "sampling_wall_s": sum(c["wall_s"] for c in chains),
        "checks": sampling_checks(tree),
        **predictive_checks(tree),
    }
    if _noise_site(tree):
        row = noise.loc[NOISE_STD]
        metrics["noise_std_posterior"] = {
            k: float(row[k]) for k in ("mean", "sd", "hdi90_lb", "hdi90_ub")
        }
    maps = field_maps(tree)
    if "truth" in maps:
        metrics.update(field_scores(maps, "posterior"))
        if "gp_mean" in maps:
            metrics.update({f"gp_{k}": v for k, v in field_scores(maps, "gp").items()})
    if names and all(_truth(tree, n) is not None for n in names):
        post = tree["posterior"]
        draws = {n: post[n].values for n in names}
        named = named_scores(draws, {n: _truth(tree, n) for n in names}, "hdi")
        metrics["named_abs_error"] = named["abs_error"]
        metrics["named_in_hdi90"] = named["in_90"]
    return metrics


def text_summary(tree: xr.DataTree) -> str:
    """The named-parameter table, the residual-block table and the headline metrics."""
    names = _names(tree)
    parts = [f"Posterior ({tree.attrs['kernel']})"]
    if names:
        parts += ["", "Named parameters (90% HDI):", summarize_named(tree).to_string()]
    parts += ["", "Residual block z_rec:", summarize_residual(tree).to_string()]
    if _noise_site(tree):
        noise = summarize_named(tree, [NOISE_STD]).to_string()
        parts += ["", "Noise std (unknown, sampled; 90% HDI):", noise]
    if "truth" not in field_maps(tree):
        parts += ["", "No truth: measured data, so no error metrics; see the ppc_* checks."]
    if BASELINE in tree.children:
        attrs = tree[BASELINE].attrs
        parts += [
            "",
            f"Gaussian baseline (gp_* metrics): {attrs['prior']}, rank {attrs['rank']}, "
            f"{attrs['num_fields']} draws of the {attrs['simulator']!r} simulator, seed "
            f"{attrs['seed']} ({attrs.get('seed_source', 'given')}); {attrs['method']}.",
        ]
    parts += ["", "Metrics:", json_text(study_metrics(tree), indent=2)]
    return "\n".join(parts)


def _image(fig: Figure, ax: object, values: np.ndarray, extent: tuple, title: str) -> None:
    im = ax.imshow(values, origin="lower", extent=extent, cmap="viridis")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)


def plot_fields(tree: xr.DataTree) -> Figure:
    """Truth (if known), posterior mean and std, baseline mean (if run), and the data fit."""
    post = tree["posterior"]
    extent = (*post["x"].values[[0, -1]], *post["y"].values[[0, -1]])
    maps = field_maps(tree)
    panels = [("truth", maps["truth"])] if "truth" in maps else []
    panels += [
        ("posterior mean", maps["posterior_mean"]),
        ("posterior std", maps["posterior_std"]),
    ]
    if "gp_mean" in maps:
        panels.append(("Gaussian baseline mean", maps["gp_mean"]))
    fig = Figure(figsize=(4.2 * (len(panels) + 1), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels) + 1)
    for ax, (title, values) in zip(axes, panels, strict=False):
        _image(fig, ax, values, extent, title)
    obs = tree["observed_data"][OBS].values
    ax = axes[-1]
    if "posterior_predictive" in tree.children:
        rep = tree["posterior_predictive"][OBS].values.reshape(-1, obs.size)
        lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
        ax.fill_between(np.arange(obs.size), lo, hi, alpha=0.4, label="90% predictive")
    ax.plot(obs, "k.", label="observed")
    ax.set_xlabel("sensor")
    ax.set_title("data fit")
    ax.legend()
    return fig


def plot_pair(tree: xr.DataTree) -> Figure:
    """Pair plot of the named parameters, truth marked in red."""
    names = _names(tree)
    if not names:
        raise ValueError("the posterior has no named variables to plot")
    draws = {n: tree["posterior"][n].values.reshape(-1) for n in names}
    d = len(names)
    fig = Figure(figsize=(2.6 * d, 2.6 * d), layout="constrained")
    axes = np.atleast_2d(fig.subplots(d, d, squeeze=False))
    for i, yname in enumerate(names):
        for j, xname in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(draws[xname], bins=30, color="C0")
                if (t := _truth(tree, xname)) is not None:
                    ax.axvline(float(t), color="C3")
            else:
                ax.plot(draws[xname], draws[yname], ".", ms=2, alpha=0.4)
                tx, ty = _truth(tree, xname), _truth(tree, yname)
                if tx is not None and ty is not None:
                    ax.plot(float(tx), float(ty), "*", color="C3", ms=12)
            if i == d - 1:
                ax.set_xlabel(xname)
            if j == 0 and i > 0:
                ax.set_ylabel(yname)
    return fig


def plot_traces(tree: xr.DataTree, max_rec: int = 3) -> Figure:
    """Traces per chain of the named parameters and the first ``max_rec`` z_rec coordinates."""
    post = tree["posterior"]
    series = [(n, post[n].values) for n in _names(tree)]
    rec = post[Z_REC].values
    series += [(f"z_rec[{k}]", rec[..., k]) for k in range(min(max_rec, rec.shape[-1]))]
    fig = Figure(figsize=(9, 1.8 * len(series)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (label, values) in zip(axes, series, strict=True):
        for chain, trace in enumerate(values):
            ax.plot(trace, lw=0.7, label=f"chain {chain}")
        ax.set_ylabel(label)
    axes[0].legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("draw")
    return fig


def write_report(tree: xr.DataTree, out: str | os.PathLike) -> dict[str, Path]:
    """Write the figures, ``summary.txt`` and ``metrics.json`` into ``out``, each atomically.

    Figures: ``fields.png``, ``traces.png`` and, with named variables, ``pair.png``.
    ``metrics.json`` is strict JSON (:func:`invprior.fileio.json_text`): a metric that is
    not finite (``rhat_max`` of a single chain, say) is ``null``, and a sibling
    ``<metric>_note`` says why. :func:`invprior.study.run_study` calls this inside the
    partial folder it swaps in whole; ``invprior report`` rewrites the files of a finished
    study in place, each one atomically.

    Args:
        tree: A DataTree from :func:`invprior.datatree.to_arviz` with field draws.
        out: Output folder (created if needed).

    Returns:
        ``{kind: path}`` of the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"fields": plot_fields(tree), "traces": plot_traces(tree)}
    if _names(tree):
        figures["pair"] = plot_pair(tree)
    written = {name: save_figure(fig, out / f"{name}.png") for name, fig in figures.items()}
    written["summary"] = write_text(out / "summary.txt", text_summary(tree))
    written["metrics"] = write_json(out / "metrics.json", study_metrics(tree), indent=2)
    return written
