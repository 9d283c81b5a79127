# SPDX-License-Identifier: MIT
"""``invprior run CONFIG.toml``: a whole inverse study from one configuration file.

Builds the mesh, PDE, sensors, prior and synthetic data the file describes, runs MAP then
MCMC and the Gaussian baseline on the same data, writes ``posterior.nc`` (ArviZ
DataTree), figures, ``summary.txt``, ``metrics.json`` and ``fields.xdmf`` (+ ``.h5``, for
ParaView) into the output folder, prints the summary and, as the last line, one JSON
object with the study's metrics. Runs under ``mpiexec`` too (rank 0 prints): by default
the mesh is distributed over all ranks and the chains run one after another; with
``--parallel-chains`` (or ``[mcmc] parallel_chains = true``) C chains on N ranks run on
min(C, N) rank groups at once, each with its own mesh (:mod:`invprior.parallel`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` to the ``invprior`` parser."""
    p = subparsers.add_parser(
        "run",
        help="run a whole inverse study from a TOML file",
        description=(
            "Run the study described by CONFIG.toml (tables mesh, pde, sensors, noise, "
            "approximation_error, prior, truth, map, mcmc, baseline, output; see "
            "invprior.study). Writes posterior.nc, the report and linearised-prior "
            "figures, summary.txt, metrics.json and fields.xdmf (+ fields.h5, for ParaView) "
            "into the output folder; the last line printed is one JSON object (rel_l2_error, "
            "named_abs_error, coverage_90, ess_min, rhat_max, divergences, pde_solves, wall_s "
            "and, with the Gaussian baseline, gp_rel_l2_error and gp_coverage_90)."
        ),
    )
    p.add_argument("config", type=Path, metavar="CONFIG.toml", help="study configuration")
    p.add_argument("--out", type=Path, default=None, help="output folder (overrides [output])")
    p.add_argument(
        "--chains",
        type=int,
        default=None,
        metavar="C",
        help="number of MCMC chains (overrides [mcmc] num_chains)",
    )
    p.add_argument(
        "--parallel-chains",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the chains at once on min(C, N) groups of the N MPI ranks, each group "
        "with its own mesh, instead of one after another on one mesh over all ranks "
        "(overrides [mcmc] parallel_chains; min(C, N) must divide N)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per process (default 1: the generators are small, so more "
        "threads only add synchronisation; use MPI ranks for parallel work)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the study; returns 0, or 2 with a message on stderr for a bad configuration."""
    import dataclasses
    import tomllib

    from mpi4py import MPI

    import torch

    from invprior.parallel import chain_group
    from invprior.study import StudyConfig, run_study

    if args.threads < 1:
        print(f"invprior run: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)

    comm = MPI.COMM_WORLD
    try:
        config = StudyConfig.from_toml(args.config)
    except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as err:
        print(f"invprior run: error: {args.config}: {err}", file=sys.stderr)
        return 2
    try:
        if args.chains is not None:
            mcmc = dataclasses.replace(config.mcmc, num_chains=args.chains)
            config = dataclasses.replace(config, mcmc=mcmc)
        if args.parallel_chains is not None:
            config = dataclasses.replace(config, parallel_chains=args.parallel_chains)
        if config.parallel_chains:
            chain_group(comm.rank, comm.size, config.mcmc.num_chains)  # raises if no split
    except ValueError as err:
        print(f"invprior run: error: {err}", file=sys.stderr)
        return 2
    if args.out is not None:
        config = dataclasses.replace(config, folder=args.out)
    metrics = run_study(config, comm)
    if comm.rank == 0:
        print((Path(config.folder) / "summary.txt").read_text())
        print(f"report: {config.folder}")
        print(json.dumps(metrics))
    return 0
