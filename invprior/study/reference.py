# SPDX-License-Identifier: MIT
r"""The exact-prior reference: a study's posterior against the simulator's own prior.

A source study (``[pde] kind = "source"``, ``[truth] simulator = "source"``) infers the
field with a learned prior. The simulator that drew its truth defines the exact prior: the
14 independent uniform factors of :data:`invprior.priors.simulate.SOURCE_PARAMETERS`, as
the generator :class:`invprior.priors.SimulatorGenerator` (the named block is the named
parameters themselves, the residual block the ten other factors in probit coordinates, the
decoder the simulator). Under :class:`invprior.model.DisentangledPrior` the library's MAP
and samplers apply unchanged, with measurement noise only (:func:`exact_problem`). What the
exact prior cannot resolve from the data, no prior learned from the simulator can, so its
posterior is the yardstick of the learned one.

:func:`reference_study` compares the two posteriors on many truths. Each truth is a
held-out draw of a family (:data:`FAMILIES`: the simulator's own distribution, with the
study's ``[truth] seed``, or one of its misspecified variants,
:func:`invprior.priors.simulate.simulate_misspecified_sources`); its data are the study's
sensors and noise (``[noise] seed`` plus the truth's index, so every truth has its own
noise draw). Both posteriors are sampled the same way, MAP (``[map]``) then the study's
sampler (``[mcmc]``, seed ``[study] seed``), and scored against the truth
(:func:`compare_posteriors`):

- per named parameter, the 90% highest-density interval of each posterior, the ratio of
  their widths (learned / exact), whether each holds the truth, the error of each mean,
  and the 1-Wasserstein distance between the two marginals (also in units of the exact
  posterior's standard deviation);
- for the field, each posterior mean's relative L2 error, the 90% band's coverage and the
  CRPS (:func:`invprior.scores.crps`), the learned field being the generator's plus a
  conditional draw of its approximation error, as a study reports it
  (:func:`invprior.study.run.posterior_tree`);
- where each posterior puts the source in the field: the spread (standard deviation over
  the draws) of the centroid of every posterior field (:func:`source_centroid`), beside
  the spread of the named position. A named position far wider than the field's says the
  named variable is loosely tied to the field, not that the data leave the field unsure;
- what the learned generator's range costs: the relative L2 error of the truth's
  least-squares projection onto it, and where that best fit puts the named factors
  (:func:`truth_projection`). A learned posterior mean that errs with the projection errs
  because the generator cannot draw the truth with its own named factors, not because of
  the sampler;
- each posterior's convergence: R-hat, bulk ESS and divergences.

Every truth's record is kept on disk as soon as it exists (:class:`invprior.cache.ResultCache`),
so an interrupted study resumes, and shards of the truths can run side by side in one
folder. :func:`summarise` aggregates the records per family, :func:`markdown` and
:func:`plot_reference` present them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.stats import spearmanr, wasserstein_distance

from .. import infer
from ..cache import ResultCache
from ..diagnostics import field_summary, summarize_named
from ..model import DisentangledPrior, InverseProblem
from ..priors import GridSpec, SimulatorGenerator
from ..priors.base import Generator
from ..priors.checkpoint import digest
from ..priors.metrics import least_squares_projections
from ..priors.simulate import simulate, simulate_misspecified_sources
from ..report import field_scores, study_metrics
from ..scores import crps
from ..validation import InputError
from .config import StudyConfig
from .run import posterior_tree
from .setup import StudySetup, build_study, synthetic_data

__all__ = [
    "FAMILIES",
    "POSTERIORS",
    "check_source_study",
    "compare_posteriors",
    "complete_projections",
    "exact_posterior",
    "exact_problem",
    "exact_settings_of",
    "held_out_truth",
    "link_floor",
    "markdown",
    "plot_reference",
    "reference_study",
    "settings_of",
    "source_centroid",
    "summarise",
    "truth_projection",
]

#: Families of held-out truths: the simulator's distribution and its misspecified variants.
FAMILIES = ("in_distribution", "two_sources", "sharp")

#: The two posteriors of every truth, in the order they are reported.
POSTERIORS = ("learned", "exact")


def check_source_study(config: StudyConfig, where: str) -> None:
    """InputError (naming ``where``) unless ``config`` is a synthetic source study."""
    if config.pde.kind != "source" or config.truth is None or config.truth.simulator != "source":
        truth = None if config.truth is None else config.truth.simulator
        raise InputError(
            f"{where}: the exact-prior reference needs [pde] kind = 'source' and [truth] "
            f"simulator = 'source', got {config.pde.kind!r} and {truth!r}"
        )


def exact_problem(setup: StudySetup, noise_std: object) -> InverseProblem:
    """The inverse problem of a study's data under the simulator's exact prior.

    Args:
        setup: The study's set-up (:func:`invprior.study.build_study`): its forward model
            and its generator's grid.
        noise_std: The measurement noise std (no approximation-error model: the exact
            prior represents every field of the simulator).
    """
    grid = setup.problem.prior.generator.grid
    return InverseProblem(DisentangledPrior(SimulatorGenerator(grid)), setup.forward, noise_std)


#: The 0.95 quantile of the standard normal: a Gaussian's 90% interval is ``2 Z95 sd`` wide.
Z95 = 1.6448536269514722


def link_floor(prior: DisentangledPrior) -> dict[str, float]:
    r"""Per named parameter, the 90% interval width the prior's link alone leaves.

    The link :math:`z_{aux} \mid u \sim N(a(u), \tau^2 I)` with
    :math:`a_j(u) = (u_j - m_j) / s_j` keeps :math:`u_j` uncertain by
    :math:`\tau s_j` even when the data fix :math:`z_{aux}` exactly, so no data narrow the
    named posterior below :math:`2 z_{0.95} \tau s_j`; the widths add in quadrature with
    what the data leave. Set beside the exact prior's widths (:func:`summarise`), it says
    how close a perfect generator with this link could come.
    """
    scale = prior.generator.aux_std.double().cpu().numpy()
    return {
        name: float(2 * Z95 * prior.tau * s)
        for name, s in zip(prior.aux_names, scale, strict=True)
    }


def source_centroid(fields: np.ndarray, grid: GridSpec) -> np.ndarray:
    """Where a source field sits: the centroid ``(x, y)`` of its non-negative part.

    Args:
        fields: Fields on ``grid``, shape ``(*batch, ny, nx)``.
        grid: Their grid.

    Returns:
        Centroids in the grid's coordinates, shape ``(*batch, 2)``; NaN for a field with
        no positive value.
    """
    (x0, y0), (x1, y1) = grid.bbox
    y, x = np.meshgrid(
        np.linspace(y0, y1, grid.shape[0]), np.linspace(x0, x1, grid.shape[1]), indexing="ij"
    )
    weight = np.clip(np.asarray(fields, dtype=np.float64), 0.0, None)
    total = weight.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack(
            [(weight * x).sum(axis=(-2, -1)) / total, (weight * y).sum(axis=(-2, -1)) / total],
            axis=-1,
        )


def held_out_truth(
    family: str, index: int, seed: int, grid: object
) -> tuple[np.ndarray, dict[str, float]]:
    """The ``index``-th held-out truth of ``family``: its field and its named factors.

    ``"in_distribution"`` is the ``index``-th field of ``simulate("source", ..., seed)``
    (the study's own truth for the study's index); ``"two_sources"`` and ``"sharp"`` that
    of :func:`invprior.priors.simulate.simulate_misspecified_sources` (the named factors
    describe the primary source).

    Raises:
        ValueError: An unknown family.
    """
    if family == "in_distribution":
        data = simulate("source", index + 1, seed, grid)
    elif family in FAMILIES:
        data = simulate_misspecified_sources(index + 1, seed, grid, family)
    else:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    named = {name: float(data.factors[name][index]) for name in data.aux_names}
    return np.asarray(data.fields[index], dtype=np.float64), named


def _posterior_scores(
    config: StudyConfig,
    problem: InverseProblem,
    obs: torch.Tensor,
    truth: Mapping[str, object],
    approximation: tuple | None,
) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """MAP and the study's sampler on one problem: its scores and its named draws."""
    tic = time.perf_counter()
    start = infer.map(problem, obs, seed=config.study.seed, config=config.map)
    sampler = infer.SAMPLERS[config.mcmc.kernel]
    result = sampler(problem, obs, init=start, seed=config.study.seed, config=config.mcmc)
    tree = posterior_tree(
        result, problem, obs, truth=truth, seed=config.study.seed, approximation=approximation
    )
    metrics = study_metrics(tree)
    table = summarize_named(tree)
    named = {}
    for name, row in table.iterrows():
        lo, hi = float(row["hdi90_lb"]), float(row["hdi90_ub"])
        named[name] = {
            "mean": float(row["mean"]),
            "sd": float(row["sd"]),
            "hdi90": [lo, hi],
            "hit": bool(lo <= truth[name] <= hi),
            "abs_error": float(abs(row["mean"] - truth[name])),
        }
    field = tree["posterior"]["field"].values
    fields = field.reshape(-1, *field.shape[-2:])
    centroids = source_centroid(fields, problem.prior.generator.grid)
    maps = {"truth": truth["field"], **{f"post_{k}": v for k, v in field_summary(fields).items()}}
    scores = {
        "named": named,
        **field_scores(maps, "post"),
        "crps": crps(fields, truth["field"]),
        "position_sd": np.nanstd(centroids, axis=0).tolist(),
        "named_rhat_max": float(table["r_hat"].max()),
        "named_ess_min": float(table["ess_bulk"].min()),
        "rhat_max": metrics["rhat_max"],
        "ess_min": metrics["ess_min"],
        "divergences": metrics["divergences"],
        "wall_s": time.perf_counter() - tic,
    }
    draws = {name: tree["posterior"][name].values.reshape(-1) for name in named}
    return scores, draws


def _truth_seed(config: StudyConfig, family: str) -> int:
    """The simulator seed of ``family``'s truths (``[truth] seed``; plus one off-family)."""
    return config.truth.seed + (0 if family == "in_distribution" else 1)


def _truth_and_data(
    config: StudyConfig, setup: StudySetup, family: str, index: int
) -> tuple[dict[str, object], object, torch.Tensor]:
    """A held-out truth (field and named factors), its noise std and its noisy data."""
    field, named = held_out_truth(
        family, index, _truth_seed(config, family), setup.problem.prior.generator.grid
    )
    noise = dataclasses.replace(config.noise, seed=config.noise.seed + index)
    std, data = synthetic_data(dataclasses.replace(config, noise=noise), setup.forward, field)
    return {"field": field, **named}, std, data


def exact_posterior(
    config: StudyConfig, setup: StudySetup, family: str, index: int
) -> dict[str, object]:
    """One held-out truth's exact-prior posterior (:func:`exact_problem`), scored.

    It reads the study's mesh, sensors, noise, truth, ``[map]``, ``[mcmc]`` and
    ``[study]``, and the learned generator's grid, nothing else of the learned prior
    (:func:`exact_settings_of`), so a study of another generator can reuse it.

    Returns:
        ``{"scores": scores, "draws": {name: [draw, ...]}}``: the scores as in the module
        docstring and the named draws (all chains, flattened), JSON-ready.
    """
    truth, std, data = _truth_and_data(config, setup, family, index)
    problem = exact_problem(setup, std)
    scores, draws = _posterior_scores(config, problem, problem.check_obs(data), truth, None)
    return {"scores": scores, "draws": {name: d.tolist() for name, d in draws.items()}}


def compare_posteriors(
    config: StudyConfig,
    setup: StudySetup,
    family: str,
    index: int,
    exact: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """One held-out truth's learned and exact-prior posteriors, scored side by side.

    Args:
        config: The study (a synthetic source study): sensors, noise, ``[map]``,
            ``[mcmc]`` and ``[study] seed``.
        setup: Its set-up (:func:`invprior.study.build_study`), shared by all truths:
            the forward model, the learned prior and its approximation error.
        family: The truth's family (:data:`FAMILIES`).
        index: The truth's index in its family.
        exact: The truth's :func:`exact_posterior` when it is already known; ``None``
            computes it.

    Returns:
        ``{"family", "index", "truth": {name: value}, "learned": scores, "exact": scores,
        "compare": {name: {"width_ratio", "w1", "w1_over_sd"}}, "field_error_ratio",
        "position_sd_ratio": [x, y], "projection_error"}``, each ``scores`` as described in
        the module docstring (``position_sd`` the centroid's standard deviation, x and y).
    """
    truth, std, data = _truth_and_data(config, setup, family, index)
    approx = setup.approximation_error
    learned = setup.measured.prior
    problem = InverseProblem(learned, setup.forward, approx.likelihood(std) if approx else std)
    approximation = (approx, setup.forward, std) if approx else None
    if exact is None:
        exact = exact_posterior(config, setup, family, index)
    named = {k: v for k, v in truth.items() if k != "field"}
    record: dict[str, object] = {"family": family, "index": index, "truth": named}
    record["learned"], learned_draws = _posterior_scores(
        config, problem, problem.check_obs(data), truth, approximation
    )
    record["exact"] = exact["scores"]
    draws = {
        "learned": learned_draws,
        "exact": {name: np.asarray(d) for name, d in exact["draws"].items()},
    }
    record["compare"] = {
        name: {
            "width_ratio": _width(record["learned"], name) / _width(record["exact"], name),
            "w1": (w1 := _wasserstein(draws, name)),
            "w1_over_sd": w1 / record["exact"]["named"][name]["sd"],
        }
        for name in learned.aux_names
    }
    record["field_error_ratio"] = (
        record["learned"]["rel_l2_error"] / record["exact"]["rel_l2_error"]
    )
    record["position_sd_ratio"] = [
        lo / hi
        for lo, hi in zip(
            record["learned"]["position_sd"], record["exact"]["position_sd"], strict=True
        )
    ]
    record["projection_error"], record["projection_named"] = truth_projection(
        learned.generator, truth["field"]
    )
    return record


def truth_projection(generator: Generator, field: np.ndarray) -> tuple[float, dict[str, float]]:
    """A truth's least-squares projection onto the generator's range.

    Returns:
        The projection's relative L2 error
        (:func:`invprior.priors.metrics.least_squares_projections`) and ``{name: value}``,
        its named block read through the link, in physical units.
    """
    latents, errors = least_squares_projections(generator, np.asarray(field)[None])
    z_aux = torch.as_tensor(latents[:, : generator.aux_dim], dtype=torch.float64)
    named = generator.to_physical(z_aux)[0].tolist()
    return float(errors[0]), dict(zip(generator.aux_names, named, strict=True))


def complete_projections(
    config: StudyConfig, records: Sequence[Mapping], generator: Generator
) -> list[dict]:
    """The records, each with the named factors of its truth's projection.

    Records written before :func:`compare_posteriors` kept ``projection_named`` get it
    from :func:`truth_projection` on their truth, re-drawn from ``config``'s ``[truth]
    seed``; the records' own projection errors then check that ``generator`` is the one
    they were made with (to 1%: an L-BFGS path computed with another torch build or thread
    count ends a little elsewhere, another generator far off). Records that have it are
    returned as they are.

    Raises:
        InputError: A record's projection error is not ``generator``'s on its truth (more
            than 1% off).
    """
    done = []
    for record in records:
        record = dict(record)
        if "projection_named" not in record:
            family, index = record["family"], record["index"]
            field, _ = held_out_truth(family, index, _truth_seed(config, family), generator.grid)
            error, record["projection_named"] = truth_projection(generator, field)
            if not np.isclose(error, record["projection_error"], rtol=1e-2, atol=0.0):
                raise InputError(
                    f"record {family}-{index:03d}: projection error "
                    f"{record['projection_error']:.6g} in the record, {error:.6g} with the "
                    "given generator: the records are of another generator or truth seed"
                )
        done.append(record)
    return done


def _diagnostic(rows: Sequence[Mapping], which: str, key: str) -> np.ndarray:
    """``rows``' convergence figure ``key`` of posterior ``which``, NaN where undefined.

    A record holds ``null`` for an R-hat or ESS that is not finite (a chain that never
    moved); it stays NaN here, so the study's maximum or minimum is undefined too
    rather than taken over the other truths.
    """
    return np.array([np.nan if r[which][key] is None else r[which][key] for r in rows], float)


def _wasserstein(draws: Mapping[str, Mapping[str, np.ndarray]], name: str) -> float:
    """1-Wasserstein distance between the learned and exact draws of ``name``."""
    return float(wasserstein_distance(draws["learned"][name], draws["exact"][name]))


def _width(scores: Mapping, name: str) -> float:
    """Width of a posterior's 90% HDI of ``name``."""
    lo, hi = scores["named"][name]["hdi90"]
    return hi - lo


def settings_of(config: StudyConfig, families: Sequence[str]) -> dict[str, object]:
    """What a truth's record depends on besides its key and the code.

    The study, the families and the digest of the learned prior's checkpoint
    (:func:`invprior.priors.checkpoint.digest`), so a retrained generator of the same name
    recomputes every truth.
    """
    try:
        generator = digest(config.prior.name)
    except (OSError, ValueError) as err:
        raise InputError(f"[prior] name = {config.prior.name!r}: {err}") from err
    return {"config": repr(config), "families": list(families), "generator": generator}


#: Study tables the exact-prior posterior does not read: it has the simulator's prior
#: and no approximation-error model.
_LEARNED_ONLY = frozenset({"prior", "approximation_error", "baseline", "output"})


def exact_settings_of(config: StudyConfig, grid: GridSpec) -> dict[str, object]:
    """What a truth's :func:`exact_posterior` depends on besides its key and the code.

    Every table of the study but those of the learned prior, and the grid the truths
    live on: the exact posteriors of one study serve every generator of that grid.
    """
    tables = {
        f.name: repr(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in _LEARNED_ONLY
    }
    return {"config": tables, "grid": repr(grid)}


def reference_study(
    config: StudyConfig,
    num_truths: int,
    *,
    families: Sequence[str] = ("in_distribution",),
    out: str | os.PathLike | None = None,
    exact: str | os.PathLike | None = None,
    shard: tuple[int, int] = (0, 1),
    comm: object | None = None,
    progress: bool = False,
) -> list[dict[str, object]]:
    """The learned against the exact-prior posterior on ``num_truths`` truths per family.

    The study's set-up (mesh, sensors, learned prior and its approximation error) is built
    once and shared by every truth (:func:`compare_posteriors`).

    Args:
        config: A synthetic source study, e.g. ``examples/source_identification.toml``.
        num_truths: Truths per family, indices ``0 .. num_truths - 1``.
        families: Families of truths (:data:`FAMILIES`).
        out: Folder whose ``truths/`` keeps every finished truth's record
            (:class:`invprior.cache.ResultCache`, valid for this configuration and code)
            and ``exact/`` its exact-prior posterior; None keeps nothing.
        exact: Folder that keeps the exact-prior posteriors instead of ``out/exact``.
            They are valid for every generator of the grid (:func:`exact_settings_of`),
            so the studies of several generators, each with its own ``out``, can share
            one folder and sample only their own posteriors.
        shard: ``(k, n)``: only the truths ``k, k + n, ...`` of each family, so ``n``
            processes can share one ``out``.
        comm: MPI communicator of the mesh (default ``MPI.COMM_SELF``).
        progress: Print a line per finished truth.

    Returns:
        The records of this shard's truths, in order (family, then index).

    Raises:
        InputError: ``config`` is not a synthetic source study; an unknown family; a bad
            number of truths or shard; ``exact`` without ``out``.
    """
    check_source_study(config, "reference study")
    if unknown := [f for f in families if f not in FAMILIES]:
        raise InputError(f"families: unknown {unknown}; choose from {list(FAMILIES)}")
    k, n = shard
    if num_truths < 1 or n < 1 or not 0 <= k < n:
        raise InputError(
            f"need num_truths >= 1 and a shard k/n with 0 <= k < n, got {num_truths} and {k}/{n}"
        )
    if exact is not None and out is None:
        raise InputError("a folder for the exact-prior posteriors needs an out folder as well")
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_SELF
    settings = settings_of(config, families)
    if out is not None:
        exact_folder = Path(exact) if exact is not None else Path(out) / "exact"
    setup = build_study(config, comm)
    records = []
    for family in families:
        for index in range(k, num_truths, n):
            key = f"{family}-{index:03d}"
            if out is None:
                record = compare_posteriors(config, setup, family, index)
            else:
                record = _kept_comparison(
                    config, setup, family, index, Path(out), exact_folder, settings
                )
            records.append(record)
            if progress:
                print(f"{key}: {_line(record)}", flush=True)
    return records


def _kept_comparison(
    config: StudyConfig,
    setup: StudySetup,
    family: str,
    index: int,
    out: Path,
    exact: Path,
    settings: dict,
) -> dict[str, object]:
    """:func:`compare_posteriors` through the records kept under ``out`` and ``exact``."""
    key = f"{family}-{index:03d}"
    records = ResultCache(out / "truths", settings)
    if (record := records.get(key)) is not None:
        return record
    grid = setup.problem.prior.generator.grid
    posterior = ResultCache(exact, exact_settings_of(config, grid)).fetch(
        key, exact_posterior, config, setup, family, index
    )
    record = compare_posteriors(config, setup, family, index, posterior)
    records.put(key, record)
    return record


def _line(record: Mapping) -> str:
    """One truth's result in one line."""
    ratios = ", ".join(f"{k} {v['width_ratio']:.2f}" for k, v in record["compare"].items())
    return (
        f"width ratios {ratios}; field error {record['learned']['rel_l2_error']:.4f} "
        f"(exact {record['exact']['rel_l2_error']:.4f})"
    )


def summarise(
    records: Iterable[Mapping], floor: Mapping[str, float] | None = None
) -> dict[str, dict[str, object]]:
    r"""Per family: medians and rates over the truths (the study's headline numbers).

    Per named parameter: the median 90%-interval width ratio (learned / exact), each
    posterior's 90% hit rate and mean absolute error of its mean, and the median
    1-Wasserstein distance in exact standard deviations. For the field: each posterior's
    median relative L2 error and CRPS and mean coverage, the median per-truth ratio of
    the learned to the exact field error, and the ratio of their mean errors. Where the
    source sits in the field: the median per-truth ratio (learned / exact) of the
    centroid's posterior standard deviation, x and y. What the generator's range costs: the
    median projection error of the truths, and the median of
    :math:`\sqrt{e_{exact}^2 + e_{proj}^2} / e_{exact}`, the field-error ratio that a
    posterior as good as the exact one but confined to the generator's range would reach
    if the two errors were independent (``representation_floor_median``). For
    convergence: the largest named R-hat, the smallest named bulk ESS and the divergences
    of each posterior. What the learned posterior mean's error goes with, per named
    parameter: its rank correlation over the truths with the exact posterior mean's error
    (the data's noise), and where every record has the named factors of its truth's
    projection (:func:`truth_projection`), their mean absolute error and the rank
    correlation with theirs (the generator's range) (:func:`_error_relations`).

    With ``floor`` (:func:`link_floor` of the learned prior), also the median width ratio
    a generator that represented every field exactly would reach through that link,
    :math:`\sqrt{w_{exact}^2 + f^2} / w_{exact}` (``floor_ratio_median``).
    """
    by_family: dict[str, list[Mapping]] = {}
    for record in records:
        by_family.setdefault(record["family"], []).append(record)
    table = {}
    for family, rows in by_family.items():
        names = list(rows[0]["compare"])
        projected = all("projection_named" in r for r in rows)
        entry: dict[str, object] = {"truths": len(rows), "named": {}}
        for name in names:
            entry["named"][name] = {
                "width_ratio_median": float(
                    np.median([r["compare"][name]["width_ratio"] for r in rows])
                ),
                "w1_over_sd_median": float(
                    np.median([r["compare"][name]["w1_over_sd"] for r in rows])
                ),
                **(
                    {
                        "floor_ratio_median": float(
                            np.median(
                                [
                                    np.hypot(w := _width(r["exact"], name), floor[name]) / w
                                    for r in rows
                                ]  # fmt: skip
                            )
                        )
                    }
                    if floor is not None
                    else {}
                ),
                **{
                    f"{which}_{stat}": float(np.mean([r[which]["named"][name][key] for r in rows]))
                    for which in POSTERIORS
                    for stat, key in (("hit_rate", "hit"), ("abs_error", "abs_error"))
                },
                **_error_relations(rows, name, projected),
            }
        for which in POSTERIORS:
            entry[which] = {
                "rel_l2_error_median": float(np.median([r[which]["rel_l2_error"] for r in rows])),
                "rel_l2_error_mean": float(np.mean([r[which]["rel_l2_error"] for r in rows])),
                "coverage_90_mean": float(np.mean([r[which]["coverage_90"] for r in rows])),
                "crps_median": float(np.median([r[which]["crps"] for r in rows])),
                "named_rhat_max": float(np.max(_diagnostic(rows, which, "named_rhat_max"))),
                "named_ess_min": float(np.min(_diagnostic(rows, which, "named_ess_min"))),
                "divergences": int(sum(r[which]["divergences"] for r in rows)),
                "wall_s_mean": float(np.mean([r[which]["wall_s"] for r in rows])),
            }
        entry["field_error_ratio_median"] = float(
            np.median([r["field_error_ratio"] for r in rows])
        )
        entry["field_error_ratio_of_means"] = (
            entry["learned"]["rel_l2_error_mean"] / entry["exact"]["rel_l2_error_mean"]
        )
        entry["position_sd_ratio_median"] = np.median(
            [r["position_sd_ratio"] for r in rows], axis=0
        ).tolist()
        entry["projection_error_median"] = float(np.median([r["projection_error"] for r in rows]))
        entry["representation_floor_median"] = float(
            np.median(
                [
                    np.hypot(e := r["exact"]["rel_l2_error"], r["projection_error"]) / e
                    for r in rows
                ]
            )
        )
        table[family] = entry
    return table


def _errors(rows: Sequence[Mapping], name: str, which: str) -> np.ndarray:
    """Per truth, the signed error in ``name`` of a posterior's mean or of the projection."""
    values = [
        r["projection_named"][name] if which == "projection" else r[which]["named"][name]["mean"]
        for r in rows
    ]
    return np.array(values) - np.array([r["truth"][name] for r in rows])


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two errors over the truths (None: too few or constant).

    At least three truths and neither error constant, else it is undefined.
    """
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _error_relations(rows: Sequence[Mapping], name: str, projected: bool) -> dict[str, float]:
    """How the learned posterior mean's error in ``name`` goes with the others over truths.

    The rank correlation with the exact posterior mean's error
    (``exact_learned_error_rank_corr``), and where every record has it, the projection's
    mean absolute error (``projection_abs_error``) and rank correlation
    (``projection_learned_error_rank_corr``). A correlation is left out where it is
    undefined (:func:`_rank_corr`).
    """
    learned = _errors(rows, name, "learned")
    entry = {"exact_learned_error_rank_corr": _rank_corr(_errors(rows, name, "exact"), learned)}
    if projected:
        projection = _errors(rows, name, "projection")
        entry["projection_abs_error"] = float(np.mean(np.abs(projection)))
        entry["projection_learned_error_rank_corr"] = _rank_corr(projection, learned)
    return {key: value for key, value in entry.items() if value is not None}


def _cell(entry: Mapping[str, float], key: str) -> str:
    """A correlation of the summary to two digits, or "-" where it is undefined."""
    return f"{entry[key]:.2f}" if key in entry else "-"


def markdown(table: Mapping[str, Mapping]) -> str:
    """The summary as Markdown tables: named parameters, then field and convergence."""
    lines = []
    for family, entry in table.items():
        floor = all("floor_ratio_median" in e for e in entry["named"].values())
        projected = all("projection_abs_error" in e for e in entry["named"].values())
        lines += [
            f"**{family}** ({entry['truths']} truths)",
            "",
            "| named | median width ratio (learned / exact) | "
            + ("floor of the link | " if floor else "")
            + "90% hit rate learned | exact | mean abs. error learned | exact | "
            "median W1 / exact sd |",
            "|---|---|---|---|---|---|---|" + ("---|" if floor else ""),
        ]
        for name, e in entry["named"].items():
            lines.append(
                f"| {name} | {e['width_ratio_median']:.2f} | "
                + (f"{e['floor_ratio_median']:.2f} | " if floor else "")
                + f"{e['learned_hit_rate']:.2f} | {e['exact_hit_rate']:.2f} | "
                f"{e['learned_abs_error']:.4f} | {e['exact_abs_error']:.4f} | "
                f"{e['w1_over_sd_median']:.2f} |"
            )
        lines += [
            "",
            "| named | learned error: rank corr. with the exact error | "
            + (
                "projection's mean abs. error | learned error: rank corr. with the projection's |"
                if projected
                else ""
            ),
            "|---|---|" + ("---|---|" if projected else ""),
        ]
        for name, e in entry["named"].items():
            cells = [_cell(e, "exact_learned_error_rank_corr")]
            if projected:
                cells += [
                    f"{e['projection_abs_error']:.4f}",
                    _cell(e, "projection_learned_error_rank_corr"),
                ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "| posterior | rel. L2 error (median / mean) | coverage_90 | CRPS (median) | "
            "named R-hat max | named ESS min | divergences | wall s / truth |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for which in POSTERIORS:
            e = entry[which]
            lines.append(
                f"| {which} | {e['rel_l2_error_median']:.4f} / {e['rel_l2_error_mean']:.4f} | "
                f"{e['coverage_90_mean']:.3f} | {e['crps_median']:.5f} | "
                f"{e['named_rhat_max']:.3f} | {e['named_ess_min']:.0f} | {e['divergences']} | "
                f"{e['wall_s_mean']:.0f} |"
            )
        lines += [
            "",
            f"Field error, learned / exact: median per truth "
            f"{entry['field_error_ratio_median']:.2f}, ratio of the means "
            f"{entry['field_error_ratio_of_means']:.2f}. The truths' projections onto the "
            f"generator's range: median error {entry['projection_error_median']:.4f}, a "
            f"field-error ratio of {entry['representation_floor_median']:.2f} (median) with "
            "the exact posterior's error added in quadrature.",
            "",
            "Source position in the field (centroid of the posterior fields), posterior sd "
            f"learned / exact: median x {entry['position_sd_ratio_median'][0]:.2f}, "
            f"y {entry['position_sd_ratio_median'][1]:.2f}.",
            "",
        ]
    return "\n".join(lines)


def plot_reference(records: Sequence[Mapping]) -> Figure:
    """Per truth: the width ratio of each named parameter and the two field errors."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ratio_ax, error_ax = fig.subplots(1, 2)
    families = [f for f in FAMILIES if any(r["family"] == f for r in records)]
    names = list(records[0]["compare"])
    for j, family in enumerate(families):
        rows = [r for r in records if r["family"] == family]
        for k, name in enumerate(names):
            ratios = [r["compare"][name]["width_ratio"] for r in rows]
            pos = j * (len(names) + 1) + k
            ratio_ax.scatter(np.full(len(ratios), pos), ratios, s=12, alpha=0.6, color=f"C{k}",
                             label=name if j == 0 else None)  # fmt: skip
            ratio_ax.plot([pos - 0.3, pos + 0.3], [np.median(ratios)] * 2, color="k")
        error_ax.scatter(
            [r["exact"]["rel_l2_error"] for r in rows],
            [r["learned"]["rel_l2_error"] for r in rows],
            s=14, label=family,
        )  # fmt: skip
    ratio_ax.set_xticks([j * (len(names) + 1) + 1.5 for j in range(len(families))], families)
    ratio_ax.axhline(1.0, color="gray", ls="--")
    ratio_ax.set_yscale("log")
    ratio_ax.set_title("90% interval width, learned / exact")
    ratio_ax.legend(fontsize=8)
    top = max(max(r["learned"]["rel_l2_error"], r["exact"]["rel_l2_error"]) for r in records)
    error_ax.plot([0, top], [0, top], color="gray", ls="--", label="equal")
    error_ax.plot([0, top], [0, 1.2 * top], color="gray", ls=":", label="1.2 x exact")
    error_ax.set_xlabel("exact prior: rel. L2 error of the mean")
    error_ax.set_ylabel("learned prior: rel. L2 error of the mean")
    error_ax.legend(fontsize=8)
    return fig
