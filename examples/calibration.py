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
# `calibration.json` and prints one JSON line last.

# +
import argparse
import dataclasses
import json
import time
from pathlib import Path

from mpi4py import MPI

from invprior.calibration import laplace_posterior, plot_rank_histograms, sbc_ranks
from invprior.fileio import save_figure, write_json
from invprior.infer import MapConfig
from invprior.study import StudyConfig, build_study

EXAMPLE = Path(__file__).with_name("source_identification.toml")
# -


def run(problems=100, draws=99, bins=10, seed=0, config=EXAMPLE, out=None):
    """SBC of the named parameters of the example's problem; returns the summary dict.

    Collective on ``MPI.COMM_WORLD``; with ``out``, rank 0 writes ``ranks.png`` and
    ``calibration.json`` there.
    """
    tic = time.perf_counter()
    study = StudyConfig.from_toml(config)
    # Data come from the model itself, so the measurement noise is the whole noise model.
    study = dataclasses.replace(
        study, approximation_error=dataclasses.replace(study.approximation_error, enabled=False)
    )
    problem = build_study(study, MPI.COMM_WORLD).measured
    posterior = laplace_posterior(problem, draws, MapConfig(num_restarts=2, max_iterations=100))
    result = sbc_ranks(
        problem, problems, num_draws=draws, num_bins=bins, seed=seed, posterior=posterior
    )
    summary = {
        "problems": problems,
        "draws": draws,
        "bins": bins,
        "p_values": result.p_values,
        "histograms": dict(zip(result.names, result.histograms().tolist(), strict=True)),
        "min_p_value": min(result.p_values.values()),
        "wall_s": time.perf_counter() - tic,
    }
    if out is not None and MPI.COMM_WORLD.rank == 0:
        save_figure(plot_rank_histograms(result), Path(out) / "ranks.png")
        write_json(Path(out) / "calibration.json", summary, indent=2)
    return summary


# ## Command line


def main():
    parser = argparse.ArgumentParser(description="SBC of the named parameters (MAP + Laplace)")
    parser.add_argument("--out", default="results/calibration", help="output folder")
    parser.add_argument("--problems", type=int, default=100, help="simulated problems")
    parser.add_argument("--draws", type=int, default=99, help="posterior draws per problem")
    parser.add_argument("--bins", type=int, default=10, help="histogram bins")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    summary = run(args.problems, args.draws, args.bins, args.seed, out=args.out)
    if MPI.COMM_WORLD.rank == 0:
        print(f"report: {args.out}")
        print(json.dumps({k: v for k, v in summary.items() if k != "histograms"}))


if __name__ == "__main__":
    main()
