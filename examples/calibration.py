# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # Are the named parameters calibrated? Simulation-based calibration
#
# The demo's source problem (32x32 mesh, 64 sensors, 1% noise, the shipped `source-auxvae`
# prior), but with many truths drawn from the prior itself: for each, simulate data from
# the model, compute the MAP + Laplace posterior, and record the rank of every true named
# value among 99 posterior draws (Talts et al. 2018). Calibrated posteriors give uniform
# ranks; a U shape means overconfidence, a hump underconfidence, a slope a bias.
#
# Run with `python examples/calibration.py --problems 100 --out results/calibration`
# (docs/results.md gives the run time and the ranks); it writes `ranks.png`,
# `calibration.json` and prints one JSON line last. `--sampler nuts` (or `chees`) replaces
# MAP + Laplace with MCMC from the MAP (`--num-chains`, `--warmup-steps`, `--num-samples`),
# its chains pooled and thinned to the draws (`invprior.calibration.mcmc_posterior`).
# Every finished problem's ranks are kept in `OUT/problems/`, so an interrupted run
# resumes, and `--shard K/N` runs every N-th problem from the K-th, so N processes can
# share the folder; the report is written once every problem has its ranks.

# +
import argparse
import dataclasses
import json
import time
from pathlib import Path

from mpi4py import MPI

from invprior.cache import ResultCache, parse_shard
from invprior.calibration import (
    SBCResult,
    laplace_posterior,
    mcmc_posterior,
    plot_rank_histograms,
    sbc_ranks,
)
from invprior.fileio import save_figure, write_json
from invprior.infer import MapConfig, MCMCConfig
from invprior.priors.checkpoint import digest
from invprior.study import StudyConfig, build_study

EXAMPLE = Path(__file__).with_name("source_identification.toml")
# -


def run(
    problems=100,
    draws=99,
    bins=10,
    seed=0,
    config=EXAMPLE,
    out=None,
    sampler="laplace",
    mcmc=None,
    shard=(0, 1),
):
    """SBC of the named parameters of the example's problem; returns the summary dict.

    ``sampler`` is ``"laplace"`` (MAP + Laplace) or an MCMC kernel (``"nuts"``,
    ``"hmc"``, ``"chees"``) run with the settings ``mcmc`` (an
    :class:`invprior.infer.MCMCConfig`) from the MAP. Collective on ``MPI.COMM_WORLD``.
    With ``out``, every finished problem's ranks are kept in ``out/problems/`` (an
    interrupted run resumes; ``shard=(k, n)`` runs every n-th problem from the k-th, so n
    processes can share the folder), and once every problem has its ranks, rank 0 writes
    ``ranks.png`` and ``calibration.json`` there from all of them. The summary covers all
    problems when they are done, otherwise this shard's.
    """
    tic = time.perf_counter()
    study = StudyConfig.from_toml(config)
    # Data come from the model itself, so the measurement noise is the whole noise model.
    study = dataclasses.replace(
        study, approximation_error=dataclasses.replace(study.approximation_error, enabled=False)
    )
    problem = build_study(study, MPI.COMM_WORLD).measured
    map_config = MapConfig(num_restarts=2, max_iterations=100)
    if sampler == "laplace":
        posterior = laplace_posterior(problem, draws, map_config)
    else:
        mcmc = mcmc if mcmc is not None else MCMCConfig(disable_progbar=True)
        posterior = mcmc_posterior(problem, draws, mcmc, kernel=sampler, map_config=map_config)
    cache = None
    if out is not None:
        settings = {
            # the problem's tables; [map], [mcmc], [baseline] and [output] play no part
            "problem": {
                f.name: repr(getattr(study, f.name))
                for f in dataclasses.fields(study)
                if f.name not in ("map", "mcmc", "baseline", "output")
            },
            "generator": digest(study.prior.name),
            "draws": draws,
            "seed": seed,
            "sampler": sampler,
            "mcmc": None if mcmc is None else dataclasses.asdict(mcmc),
            "map": dataclasses.asdict(map_config),
        }
        cache = ResultCache(Path(out) / "problems", settings)
    result = sbc_ranks(
        problem, problems, num_draws=draws, num_bins=bins, seed=seed, posterior=posterior,
        cache=cache, shard=shard,
    )  # fmt: skip
    finished = len(result.ranks)
    if cache is not None:  # every shard's finished problems, not only this one's
        done = [cache.get(f"problem-{i:04d}") for i in range(problems)]
        finished = sum(ranks is not None for ranks in done)
        if finished == problems:
            result = SBCResult.from_ranks(result.names, done, draws, bins)
    summary = {
        "problems": len(result.ranks),
        "finished": finished,
        "complete": len(result.ranks) == problems,
        "draws": draws,
        "bins": bins,
        "sampler": sampler,
        "mcmc": None if sampler == "laplace" else dataclasses.asdict(mcmc),
        "p_values": result.p_values,
        "histograms": dict(zip(result.names, result.histograms().tolist(), strict=True)),
        "min_p_value": min(result.p_values.values()),
        "wall_s": time.perf_counter() - tic,
    }
    if summary["complete"] and out is not None and MPI.COMM_WORLD.rank == 0:
        save_figure(plot_rank_histograms(result), Path(out) / "ranks.png")
        write_json(Path(out) / "calibration.json", summary, indent=2)
    return summary


# ## Command line


def main():
    parser = argparse.ArgumentParser(description="SBC of the named parameters")
    parser.add_argument("--out", default="results/calibration", help="output folder")
    parser.add_argument("--problems", type=int, default=100, help="simulated problems")
    parser.add_argument("--draws", type=int, default=99, help="posterior draws per problem")
    parser.add_argument("--bins", type=int, default=10, help="histogram bins")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sampler", default="laplace", choices=("laplace", "nuts", "hmc", "chees"),
        help="MAP + Laplace, or MCMC from the MAP with this kernel",
    )  # fmt: skip
    parser.add_argument("--num-chains", type=int, default=2, help="MCMC chains per problem")
    parser.add_argument("--warmup-steps", type=int, default=200, help="MCMC warm-up per chain")
    parser.add_argument("--num-samples", type=int, default=200, help="MCMC draws per chain")
    parser.add_argument("--max-tree-depth", type=int, default=7, help="NUTS tree depth")
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th problem from the K-th")
    args = parser.parse_args()
    try:  # InputError and ValueError: draws, bins, shard or MCMC settings that do not fit
        shard = parse_shard(args.shard)
        mcmc = None
        if args.sampler != "laplace":
            mcmc = MCMCConfig(
                num_chains=args.num_chains, warmup_steps=args.warmup_steps,
                num_samples=args.num_samples, max_tree_depth=args.max_tree_depth,
                disable_progbar=True,
            )  # fmt: skip
        summary = run(
            args.problems, args.draws, args.bins, args.seed, out=args.out,
            sampler=args.sampler, mcmc=mcmc, shard=shard,
        )  # fmt: skip
    except ValueError as err:
        parser.error(str(err))
    if MPI.COMM_WORLD.rank == 0:
        if summary["complete"]:
            print(f"report: {args.out}")
        else:  # another shard's problems are still to come
            print(
                f"{summary['finished']} of {args.problems} problems have ranks (this shard's "
                f"below); the report is written by the run that completes them"
            )
        print(json.dumps({k: v for k, v in summary.items() if k != "histograms"}))


if __name__ == "__main__":
    main()
