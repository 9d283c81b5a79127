# SPDX-License-Identifier: MIT
"""``invprior run CONFIG.toml``: a whole inverse study from one configuration file.

Builds the mesh, PDE, sensors, prior and data the file describes (a synthetic truth from
``[truth]``, or measured observations from a ``[data]`` file), runs MAP then MCMC and the
Gaussian baseline on the same data, writes ``posterior.nc`` (ArviZ
DataTree), figures, ``summary.txt``, ``metrics.json`` and ``fields.xdmf`` (+ ``.h5``, for
ParaView) into the output folder, prints the summary and, as the last line, one JSON
object with the study's metrics. Runs under ``mpiexec`` too (rank 0 prints): by default
the mesh is distributed over all ranks and the chains run one after another; with
``--parallel-chains`` (or ``[study] parallel_chains = true``) C chains on N ranks run on
min(C, N) rank groups at once, each with its own mesh (:mod:`invprior.parallel`).

The sampling is checkpointed in ``.<name>.sampling`` beside the output folder
(:mod:`invprior.infer.checkpoint`), which is deleted once the results are written. SIGINT
or SIGTERM stops the run with status 130 and one line saying how many iterations were
saved; ``invprior run --resume CONFIG.toml`` continues them and gives the draws an
uninterrupted run would have given.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from invprior.fileio import discard, json_text

from . import add_threads_option, check_threads

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` to the ``invprior`` parser."""
    p = subparsers.add_parser(
        "run",
        help="run a whole inverse study from a TOML file",
        description=(
            "Run the study described by CONFIG.toml (tables mesh, pde, sensors, noise, "
            "approximation_error, prior, truth or data, map, mcmc, baseline, output; see "
            "invprior.study; relative paths of [data] file and [pde] form are relative to "
            "CONFIG.toml). Writes posterior.nc, the report and linearised-prior "
            "figures, summary.txt, metrics.json and fields.xdmf (+ fields.h5, for ParaView) "
            "into the output folder; the last line printed is one JSON object (rel_l2_error, "
            "named_abs_error, coverage_90, ess_min, rhat_max, divergences, ppc_coverage_90, "
            "ppc_p_values, pde_solves, wall_s and, with the Gaussian baseline, "
            "gp_rel_l2_error and gp_coverage_90; a study on [data] has no error metrics)."
        ),
    )
    p.add_argument("config", type=Path, metavar="CONFIG.toml", help="study configuration")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="output folder, written as one unit (overrides [output] folder)",
    )
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
        "(overrides [study] parallel_chains; min(C, N) must divide N)",
    )
    add_threads_option(p, default=1)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the sampling of an interrupted run of the same configuration from "
        "its checkpoint, the hidden folder .<name>.sampling beside the output folder "
        "(without --resume a run starts afresh and discards that checkpoint)",
    )
    p.set_defaults(func=run)


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run from its checkpoint."""
    words = ["invprior", "run", "--resume", str(args.config)]
    if args.out is not None:
        words += ["--out", str(args.out)]
    if args.chains is not None:
        words += ["--chains", str(args.chains)]
    if args.parallel_chains is not None:
        words.append("--parallel-chains" if args.parallel_chains else "--no-parallel-chains")
    if args.threads != 1:
        words += ["--threads", str(args.threads)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Run the study; returns 0.

    The whole configuration (the file, every value, the command-line overrides, the prior
    checkpoint and the split of the ranks into chain groups) is checked on every rank
    before the mesh, the PDE or the MAP is built.

    Raises:
        InputError: Bad input: the message names the file, or the TOML table and key, or
            the option (``invprior`` prints it and exits with status 2).
    """
    import dataclasses

    from mpi4py import MPI

    import torch

    from invprior.infer.checkpoint import SamplingInterrupted, prepare_checkpoint, settings_of
    from invprior.study import OutputConfig, StudyConfig, run_study
    from invprior.study.setup import check_study
    from invprior.validation import InputError

    comm = MPI.COMM_WORLD
    check_threads(args.threads)
    if args.chains is not None and args.chains < 1:
        raise InputError(
            f"--chains sets [mcmc] num_chains, and num_chains must be >= 1, got {args.chains}"
        )
    config = StudyConfig.from_toml(args.config)
    overrides = [f"--chains {args.chains}"] if args.chains is not None else []
    if args.parallel_chains is not None:
        overrides.append(f"--{'' if args.parallel_chains else 'no-'}parallel-chains")
    where = f"{args.config} with {' '.join(overrides)}" if overrides else str(args.config)
    try:
        if args.chains is not None:
            mcmc = dataclasses.replace(config.mcmc, num_chains=args.chains)
            config = dataclasses.replace(config, mcmc=mcmc)
        if args.parallel_chains is not None:
            study = dataclasses.replace(config.study, parallel_chains=args.parallel_chains)
            config = dataclasses.replace(config, study=study)
        if args.out is not None:
            config = dataclasses.replace(config, output=OutputConfig(folder=args.out))
        check_study(config, comm)
    except InputError as err:
        raise InputError(f"{where}: {err}") from err
    settings = settings_of(config, ignore=("[output] folder", "[mcmc] disable_progbar"))
    checkpoint = prepare_checkpoint(config.output.folder, settings, resume=args.resume, comm=comm)
    torch.set_num_threads(args.threads)
    try:
        metrics = run_study(config, comm, checkpoint=checkpoint)
    except SamplingInterrupted as err:
        raise KeyboardInterrupt(f"{err}; continue with {_resume_command(args)}") from None
    except KeyboardInterrupt as err:  # after the sampling, while the results are written
        if str(err) or not checkpoint.holds_a_run:
            raise
        raise KeyboardInterrupt(
            f"the sampling is saved in {checkpoint.folder}; continue with {_resume_command(args)}"
        ) from None
    if comm.rank == 0:  # the results are written: the sampling is not needed any more
        discard(checkpoint.folder)
    if comm.rank == 0:
        print((config.output.folder / "summary.txt").read_text())
        print(f"report: {config.output.folder}")
        print(json_text(metrics))
    return 0
