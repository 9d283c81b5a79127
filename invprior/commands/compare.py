# SPDX-License-Identifier: MIT
"""``invprior compare A.toml B.toml ...``: several studies on the same data, side by side.

Each configuration is run as ``invprior run`` runs it, into its own sub-folder of
``--out`` (named after the file); the configurations must describe the same data (the
``mesh``, ``sensors``, ``noise``, ``truth`` and ``data`` tables and the PDE's physics agree),
so that the priors or inference settings they differ in are
compared on identical observations. Writes ``comparison.md`` (one row per metric, one
column per study) and ``comparison.json``; the last line printed is one JSON object,
``{study: metrics}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_threads_option, check_threads

__all__ = ["add_parser", "comparison_table", "data_differences"]

# Metrics shown in the table, in order (the JSON keeps them all).
ROWS = (
    "rel_l2_error", "gp_rel_l2_error", "coverage_90", "gp_coverage_90", "named_abs_error",
    "named_in_hdi90", "ess_min", "rhat_max", "divergences", "pde_solves", "wall_s",
)  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``invprior`` parser."""
    p = subparsers.add_parser(
        "compare",
        help="run several studies on the same data and tabulate their metrics",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("configs", type=Path, nargs="+", metavar="CONFIG.toml", help="studies (>= 2)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results/compare"),
        metavar="FOLDER",
        help="output folder: comparison.md, comparison.json and one sub-folder per study "
        "(default results/compare)",
    )
    add_threads_option(p, default=1)
    p.set_defaults(func=run)


def data_differences(configs: dict) -> list[str]:
    """What makes the data of the studies ``{name: StudyConfig}`` differ (empty if nothing)."""
    first_name, first = next(iter(configs.items()))
    problems = []
    for name, config in configs.items():
        for table in ("mesh", "sensors", "noise", "truth", "data"):
            if getattr(config, table) != getattr(first, table):
                problems.append(f"[{table}] of {name} differs from {first_name}'s")
        for key in ("kind", "kappa", "source", "form", "dirichlet", "neumann", "robin"):
            if getattr(config.pde, key) != getattr(first.pde, key):
                problems.append(f"[pde] {key} of {name} differs from {first_name}'s")
    return problems


def _cell(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value)


def comparison_table(results: dict) -> str:
    """A markdown table: one row per metric of :data:`ROWS` present, one column per study."""
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in ROWS:
        if any(row in m for m in results.values()):
            cells = [_cell(results[n].get(row, "-")) for n in names]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run the studies; returns 0.

    Every configuration is read and checked (as ``invprior run`` checks one, prior
    checkpoints included), and so is the sameness of their data, on every rank before the
    first study starts.

    Raises:
        InputError: Bad input: fewer than two files or two with the same name, a bad file
            or value (the message names the file, table and key), or configurations that
            would not see the same data (``invprior`` prints it and exits with status 2).
    """
    import dataclasses

    from mpi4py import MPI

    import torch

    from invprior.collective import on_root
    from invprior.fileio import check_output_folder, json_text, write_json, write_text
    from invprior.study import OutputConfig, StudyConfig, run_study
    from invprior.study.run import MARKER
    from invprior.study.setup import check_study
    from invprior.validation import InputError

    comm = MPI.COMM_WORLD
    names = [path.stem for path in args.configs]
    if len(args.configs) < 2 or len(set(names)) != len(names):
        raise InputError(
            f"give at least two configuration files with distinct names (each names its "
            f"sub-folder of --out), got {[str(p) for p in args.configs]}"
        )
    check_threads(args.threads)
    configs = {}
    for name, path in zip(names, args.configs, strict=True):
        config = StudyConfig.from_toml(path)
        config = dataclasses.replace(config, output=OutputConfig(folder=args.out / name))
        try:
            check_study(config, comm)
        except InputError as err:
            raise InputError(f"{path}: {err}") from err
        on_root(comm, check_output_folder, config.output.folder, "--out", MARKER)
        configs[name] = config
    problems = data_differences(configs)
    if problems:
        raise InputError(
            "the studies would not see the same data: " + "; ".join(problems) + "; make "
            "those tables agree, or compare the studies separately"
        )
    torch.set_num_threads(args.threads)
    results = {name: run_study(config, comm) for name, config in configs.items()}
    if comm.rank == 0:
        table = comparison_table(results)
        sources = ", ".join(f"`{p}`" for p in args.configs)
        write_text(args.out / "comparison.md", f"Same data, studies {sources}:\n\n{table}")
        write_json(args.out / "comparison.json", results)
        print(table)
        print(f"report: {args.out}")
        print(json_text(results))
    return 0
