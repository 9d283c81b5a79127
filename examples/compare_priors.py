# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # Deep prior vs Gaussian priors on the source problem
#
# One forward model, $-\nabla\cdot(\kappa\nabla u) = f$ on the generator's box with 64 point
# sensors and 1% noise, and three priors for the source $f$ on identical data:
#
# - **aux-vae**: the shipped Aux-VAE $f = G(z_{aux}, z_{rec})$ with named
#   $u = (x_0, y_0, \text{amplitude}, \text{width})$, the approximation-error noise model
#   $y \mid z \sim N(F(G(z)) + m_\varepsilon, \sigma^2 I + C_{\varepsilon\varepsilon})$, and
#   conditional draws of the generator's error added to the posterior fields;
# - **oracle-gp**: $f \sim N(\bar f, C)$ with the empirical mean and covariance of
#   training-distribution draws (as :func:`invprior.study.gp_baseline`);
# - **matern-gp**: $f \sim N(\bar f, \sigma^2 K_\nu(\ell))$, the training mean and a Matern
#   covariance whose $(\sigma^2, \ell, \nu)$ maximise the Gaussian likelihood of training
#   draws (:func:`invprior.priors.matern.fit_matern`);
# - **dl-cfm** (with `--dlcfm source-dlcfm`): the DL-CFM prior over the same latent, its
#   flow's noise $\varepsilon$ a latent site, so the prior models the decoder's residual
#   itself and no approximation-error model is added.
#
# Every prior is inferred the same way: MAP (L-BFGS), Gauss-Newton Laplace
# $N(\hat\zeta, H^{-1})$ in the latent space, and draws of it mapped to fields. The forward
# model is linear, so for the two Gaussian priors this is their exact posterior. Two
# regimes of held-out truths: the training distribution (`simulate_sources`, seed 777) and
# misspecified fields (`simulate_misspecified_sources`, seed 778: half two equally strong
# sources, half sources sharper than any in training).
#
# Run with `python examples/compare_priors.py --truths 20 --out results/compare_priors`.

# +
import argparse
import dataclasses
import json
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np
import torch
from matplotlib.figure import Figure

from invprior import infer, priors
from invprior.approximation_error import ApproximationError
from invprior.bridge import TorchForward
from invprior.cache import ResultCache
from invprior.diagnostics import field_summary
from invprior.fileio import save_figure, write_json, write_text
from invprior.model import DisentangledPrior, InverseProblem
from invprior.pde import SourceProblem, grid_sensors, rectangle
from invprior.priors import DLCFMGenerator, GaussianFieldGenerator
from invprior.priors.matern import fit_matern
from invprior.priors.simulate import simulate, simulate_misspecified_sources
from invprior.report import field_scores, named_scores
from invprior.scores import crps
from invprior.sites import FIELD
from invprior.study import baseline_seed, oracle_gaussian_from_fields

PRIORS = ("aux-vae", "oracle-gp", "matern-gp", "dl-cfm")
REGIMES = ("in_distribution", "misspecified")
# -

# ## Scores
#
# Every prior is scored on its posterior draws of the field: the relative L2 error of
# their mean and the 90% coverage of their pointwise band
# (:func:`invprior.report.field_scores`), and the CRPS (:func:`invprior.scores.crps`),
# which rewards a sharp and calibrated distribution at once. The named variables of the
# deep priors get the absolute error of their posterior mean and whether the truth lies
# in the central 5-95% interval of the draws (:func:`invprior.report.named_scores`).


def draw_scores(draws, truth):
    """Relative L2 error of the mean, 90% coverage and CRPS of field draws ``(n, ny, nx)``."""
    summary = {f"post_{k}": v for k, v in field_summary(draws).items()}
    scores = field_scores({**summary, "truth": truth}, "post")
    return {**scores, "crps": crps(draws, truth)}


# ## Building the shared parts once
#
# The mesh, the sensors, the approximation error's moments and the two Gaussian priors do
# not depend on the truth, so they are built once; only the noise std
# ($1\%$ of $\max|F(x^\star)|$) and the data change from truth to truth. The oracle
# Gaussian is the prior of :func:`invprior.study.gp_baseline`
# (:func:`invprior.study.oracle_gaussian_from_fields` of training-distribution draws); the
# Matern prior takes the mean of the same draws and the covariance whose hyperparameters
# maximise the likelihood of (fewer) of them. The draws are simulated once, with the seed
# of the generator's training data (:func:`invprior.study.baseline_seed`), never a truth's.


def build_priors(generator, forward, *, gp_fields, matern_fields, approx_fields, data_seed):
    """The approximation error and the three priors (Gaussian ones in float64)."""
    grid = generator.grid
    approx = ApproximationError.estimate(
        generator, simulate("source", approx_fields, data_seed, grid).fields, forward
    )
    train = simulate("source", gp_fields, data_seed, grid).fields.astype(np.float64)
    oracle = oracle_gaussian_from_fields(train, grid, 0.999)
    hyper = fit_matern(train[:matern_fields], grid)
    shape = GaussianFieldGenerator.matern(
        grid, hyper["variance"], hyper["length_scale"], hyper["nu"]
    )
    matern = GaussianFieldGenerator(torch.as_tensor(train.mean(0)), shape.basis.double(), grid)
    named = DisentangledPrior(generator)
    return approx, {"aux-vae": named, "oracle-gp": DisentangledPrior(oracle),
                    "matern-gp": DisentangledPrior(matern)}, hyper  # fmt: skip


def held_out_truths(num, grid, truth_seed, misspecified_seed):
    """``{regime: (fields, factors, kinds)}``, ``num`` truths per regime."""
    train = simulate("source", num, truth_seed, grid)
    half = (num + 1) // 2
    two = simulate_misspecified_sources(half, misspecified_seed, grid, "two_sources")
    sharp = simulate_misspecified_sources(num - half, misspecified_seed, grid, "sharp")
    return {
        "in_distribution": (train.fields, train.factors, ["training"] * num),
        "misspecified": (
            np.concatenate([two.fields, sharp.fields]),
            None,  # the names do not describe these fields: no named scores
            ["two_sources"] * half + ["sharp"] * (num - half),
        ),
    }


# ## One truth, one prior: MAP, Laplace, draws
#
# Every prior goes the same way: :func:`invprior.infer.map`, :func:`invprior.infer.laplace`
# and draws of the Laplace Gaussian, scored as draws. For the oracle Gaussian this is
# the posterior :func:`invprior.study.gp_baseline` summarises in closed form (same prior,
# same MAP and Laplace); the comparison takes draws instead, so that the CRPS and the
# coverage of every prior come from the same finite-sample estimators.


def infer_one(name, prior, forward, approx, data, std, config):
    """Posterior draws (fields and named sites) of one prior on one data set."""
    deep = name == "aux-vae"
    likelihood = approx.likelihood(std) if deep else std
    problem = InverseProblem(prior, forward, likelihood)
    obs = problem.check_obs(data) if deep else data
    map_config = config["map"] if prior.aux_names else config["gp_map"]
    start = infer.map(problem, obs, seed=config["seed"], config=map_config)
    sites = infer.laplace(problem, obs, start).sample(config["num_draws"], config["seed"])
    fields = sites[FIELD]
    if deep:  # honest field uncertainty: add the generator's conditional error
        fields = approx.posterior_fields(fields, obs, forward, std, config["seed"])
    return fields.double().numpy(), sites


def run_truth(truth, factors, priors_, pde, forward, approx, noise, rng_seed, config):
    """Scores of every prior on one truth (shared noisy data)."""
    clean = pde.forward(truth)
    std = noise * float(np.abs(clean).max())
    rng = np.random.default_rng(rng_seed)
    data = torch.as_tensor(clean + std * rng.standard_normal(clean.shape))
    rows = {}
    for name, prior in priors_.items():
        tic, solves = time.perf_counter(), pde.counter.total
        fields, sites = infer_one(name, prior, forward, approx, data, std, config)
        row = draw_scores(fields, truth)
        row.update(wall_s=time.perf_counter() - tic, pde_solves=pde.counter.total - solves)
        if factors is not None and prior.aux_names:
            draws = {k: sites[k].double().numpy() for k in prior.aux_names}
            row["named"] = named_scores(draws, factors, "central")
        rows[name] = row
    return rows


# Every truth's scores are kept on disk as soon as they exist
# (:class:`invprior.cache.ResultCache`), so an interrupted run picks up where it stopped,
# and runs of different regimes (`--regimes`) or shards of the truths (`--shard K/N`:
# every N-th truth from the K-th) sharing one `--out` can work side by side; a final run
# without them reads everything back. A change of any other argument of :func:`run`, or
# of the package's code, starts afresh.


# ## Aggregates and output


def regimes_of(records):
    """The regimes present in ``records``, in the order of :data:`REGIMES`."""
    return [regime for regime in REGIMES if any(r["regime"] == regime for r in records)]


def aggregate(records):
    """Per regime and prior: means of the scores, named errors and hit rates."""
    table = {}
    for regime in regimes_of(records):
        for name in [p for p in PRIORS if p in records[0]]:
            rows = [r[name] for r in records if r["regime"] == regime]
            entry = {k: float(np.mean([r[k] for r in rows])) for k in
                     ("rel_l2_error", "coverage_90", "crps", "wall_s", "pde_solves")}  # fmt: skip
            entry["rel_l2_error_median"] = float(np.median([r["rel_l2_error"] for r in rows]))
            named = [r["named"] for r in rows if "named" in r]
            if named:
                entry["named"] = {
                    k: {
                        "abs_error": float(np.mean([n["abs_error"][k] for n in named])),
                        "hit_90": float(np.mean([n["in_90"][k] for n in named])),
                    }
                    for k in named[0]["abs_error"]
                }
            table[f"{regime}/{name}"] = entry
    return table


def markdown(table, num):
    """The comparison table and, for the deep prior, the named-variable table."""
    lines = [
        f"{num} held-out truths per regime; means over the truths.",
        "",
        "| regime | prior | rel. L2 error (mean / median) | 90% coverage | CRPS | "
        "PDE solves / truth | wall s / truth |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, e in table.items():
        regime, name = key.split("/")
        lines.append(
            f"| {regime} | {name} | {e['rel_l2_error']:.3f} / {e['rel_l2_error_median']:.3f} | "
            f"{e['coverage_90']:.3f} | {e['crps']:.4f} | {e['pde_solves']:.0f} | "
            f"{e['wall_s']:.1f} |"
        )
    for key, e in table.items():
        if key.startswith("in_distribution/") and e.get("named"):
            lines += [
                "",
                f"| named variable ({key.split('/')[1]}) | mean abs. error | 90% hit rate |",
                "|---|---|---|",
            ]
            lines += [
                f"| {k} | {v['abs_error']:.4f} | {v['hit_90']:.2f} |"
                for k, v in e["named"].items()
            ]
    return "\n".join(lines) + "\n"


def figure(records):
    """Per-truth relative L2 error, coverage and CRPS of each prior in both regimes."""
    names = [p for p in PRIORS if p in records[0]]
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, key, label in zip(
        axes, ("rel_l2_error", "coverage_90", "crps"),
        ("relative L2 error of the mean", "90% coverage of the field", "CRPS"), strict=True,
    ):  # fmt: skip
        for j, regime in enumerate(regimes_of(records)):
            for k, name in enumerate(names):
                values = [r[name][key] for r in records if r["regime"] == regime]
                pos = j * (len(names) + 1) + k
                ax.scatter(np.full(len(values), pos), values, s=12, alpha=0.6, color=f"C{k}",
                           label=name if j == 0 else None)  # fmt: skip
                ax.plot([pos - 0.3, pos + 0.3], [np.median(values)] * 2, color="k")
        shown = regimes_of(records)
        ax.set_xticks([j * (len(names) + 1) + 1 for j in range(len(shown))], shown)
        ax.set_title(label)
    axes[1].axhline(0.9, color="gray", ls="--")
    axes[0].legend(fontsize=8)
    return fig


def run(
    truths=20,
    prior="source-auxvae",
    n=32,
    sensors=8,
    noise=0.01,
    num_restarts=4,
    max_iterations=200,
    gp_max_iterations=500,
    num_draws=200,
    gp_fields=2000,
    matern_fields=300,
    approx_fields=1000,
    truth_seed=777,
    misspecified_seed=778,
    seed=0,
    dlcfm=None,
    flow_steps=4,
    regimes=REGIMES,
    shard=(0, 1),
    out=None,
):
    """Run the comparison; with ``out``, keep every truth's scores and write the results.

    With ``out``, finished truths are kept in ``out/truths`` and the results are written
    to ``out/comparison.{md,json,png}``; without it nothing is written.

    Returns:
        ``{"table": per regime/prior aggregates, "truths": per-truth records, "matern": the
        fitted hyperparameters, "setup_s": shared set-up time, "wall_s": total}``.
    """
    settings = {k: v for k, v in locals().items() if k not in ("out", "regimes", "shard")}
    tic = time.perf_counter()
    generator = priors.load(prior)
    grid = generator.grid
    pde = SourceProblem(
        rectangle(MPI.COMM_WORLD, grid.bbox, (n, n)),
        grid_sensors(grid.bbox, sensors), grid.shape, grid.bbox,
    )  # fmt: skip
    forward = TorchForward(pde)
    data_seed, _ = baseline_seed(generator, "source")
    approx, priors_, hyper = build_priors(
        generator, forward, gp_fields=gp_fields, matern_fields=matern_fields,
        approx_fields=approx_fields, data_seed=data_seed,
    )  # fmt: skip
    if dlcfm is not None:
        flow = priors.load(dlcfm)
        if flow.grid != grid or not isinstance(flow, DLCFMGenerator):
            raise ValueError(f"{dlcfm} must be a DL-CFM generator on the grid of {prior}")
        priors_["dl-cfm"] = DisentangledPrior(flow.with_steps(flow_steps))
    setup_s = time.perf_counter() - tic
    map_config = infer.MapConfig(num_restarts=num_restarts, max_iterations=max_iterations)
    gp_map = dataclasses.replace(map_config, num_restarts=1, max_iterations=gp_max_iterations)
    config = {"map": map_config, "gp_map": gp_map, "seed": seed, "num_draws": num_draws}
    cache = ResultCache(Path(out) / "truths", settings) if out is not None else None
    records = []
    for j, (regime, (fields, factors, kinds)) in enumerate(
        held_out_truths(truths, grid, truth_seed, misspecified_seed).items()
    ):
        if regime not in regimes:
            continue
        for i in range(shard[0], truths, shard[1]):
            truth_factors = None if factors is None else {k: v[i] for k, v in factors.items()}
            args = (fields[i].astype(np.float64), truth_factors, priors_, pde, forward, approx,
                    noise, [j, i], config)  # fmt: skip
            rows = run_truth(*args) if cache is None else cache.fetch(
                f"{regime}-{i:03d}", run_truth, *args
            )  # fmt: skip
            records.append({"regime": regime, "kind": kinds[i], "index": i, **rows})
            print(f"{regime} truth {i + 1}/{truths} done", flush=True)
    table = aggregate(records)
    wall_s = time.perf_counter() - tic
    result = {"table": table, "truths": records, "matern": hyper, "setup_s": setup_s}
    result["wall_s"] = wall_s
    if out is not None:
        write_text(Path(out) / "comparison.md", markdown(table, truths))
        write_json(Path(out) / "comparison.json", result)
        save_figure(figure(records), Path(out) / "comparison.png")
    return result


# ## Command line


def main():
    parser = argparse.ArgumentParser(description="Deep prior vs Gaussian priors, same data")
    parser.add_argument("--out", default="results/compare_priors", help="output folder")
    parser.add_argument("--truths", type=int, default=20, help="held-out truths per regime")
    parser.add_argument("--prior", default="source-auxvae", help="prior name or checkpoint")
    parser.add_argument("--num-restarts", type=int, default=4, help="MAP restarts, deep prior")
    parser.add_argument(
        "--max-iterations", type=int, default=200, help="L-BFGS iterations, deep prior"
    )
    parser.add_argument("--num-draws", type=int, default=200, help="Laplace draws per truth")
    parser.add_argument("--dlcfm", default=None, help="add a DL-CFM prior (e.g. source-dlcfm)")
    parser.add_argument("--flow-steps", type=int, default=4, help="solver steps of its flow")
    parser.add_argument(
        "--regimes",
        nargs="+",
        choices=REGIMES,
        default=list(REGIMES),
        help="run these regimes only (runs sharing --out share finished truths)",
    )
    parser.add_argument("--shard", default="0/1", help="K/N: run truths K, K+N, K+2N, ... only")
    args = parser.parse_args()
    k, _, n = args.shard.partition("/")
    if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
        parser.error(f"--shard must be K/N with 0 <= K < N, got {args.shard!r}")
    summary = run(
        args.truths, args.prior, num_restarts=args.num_restarts,
        max_iterations=args.max_iterations, num_draws=args.num_draws, dlcfm=args.dlcfm,
        flow_steps=args.flow_steps, regimes=args.regimes, shard=(int(k), int(n)),
        out=args.out,
    )  # fmt: skip
    print(json.dumps({"table": summary["table"], "wall_s": summary["wall_s"]}))


if __name__ == "__main__":
    main()
