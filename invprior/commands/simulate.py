# SPDX-License-Identifier: MIT
"""``invprior simulate source|conductivity|--simulator FILE.py:NAME --n N --seed S --out DATA``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invprior.validation import InputError

from ..fileio import check_writable

__all__ = ["add_parser"]

#: Data file suffixes ``--out`` may have: our ``.npz`` and the NetCDF layout.
SUFFIXES = (".npz", ".nc")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate training fields with their ground-truth factors",
        description="Simulate fields with a built-in simulator (a 64x64 grid over the unit "
        "square) or a simulator of your own (--simulator; see invprior.training_data for "
        "its signature), and write them with every generative factor, its unit, range and "
        "the recipe to DATA.npz or, for a .nc suffix, the NetCDF layout.",
    )
    p.add_argument("simulator", nargs="?", choices=("source", "conductivity"))
    p.add_argument(
        "--simulator",
        dest="plugin",
        metavar="FILE.py:NAME",
        help="your simulator function: NAME(num, rng) -> (fields, factors) in FILE.py, "
        "which also defines GRID and FACTORS (in place of source|conductivity)",
    )
    p.add_argument("--n", type=int, required=True, help="number of fields to simulate")
    p.add_argument("--seed", type=int, required=True, help="seed (same seed, same data)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DATA.npz|DATA.nc",
        help="the data file to write (what `invprior train --data` reads)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate and save; prints one JSON line with the recipe.

    The simulator choice, ``--n``, ``--seed`` and the output path are checked before
    simulating; bad input (a bad simulator plugin included) raises
    :class:`~invprior.validation.InputError`.
    """
    if (args.simulator is None) == (args.plugin is None):
        raise InputError(
            "name one simulator: source, conductivity or --simulator FILE.py:NAME (yours)"
        )
    if args.n < 1:
        raise InputError(f"--n must be a positive integer (number of fields), got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    check_writable(args.out, "--out")
    suffix = Path(args.out).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"--out {args.out}: data files end in .npz or .nc (NetCDF), got "
            f"{Path(args.out).suffix or 'no suffix'!r}"
        )
    # after the checks: these take seconds
    from invprior.priors.simulate import simulate
    from invprior.training_data import run_simulator, write_fields

    if args.plugin is not None:
        data = run_simulator(args.plugin, args.n, args.seed)
    else:
        data = simulate(args.simulator, args.n, args.seed)
    path = write_fields(data, args.out) if suffix == ".nc" else data.save(args.out)
    print(
        json.dumps(
            {
                "out": str(path),
                "n": len(data),
                "seed": args.seed,
                "simulator": args.simulator or args.plugin,
                "aux_names": list(data.aux_names),
            }
        )
    )
    return 0
