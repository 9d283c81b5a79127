# SPDX-License-Identifier: MIT
"""``invprior simulate source|conductivity --n N --seed S --out DATA.npz``."""

from __future__ import annotations

import argparse
import json

from invprior.validation import InputError

from ..fileio import check_writable

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate training fields with their ground-truth factors",
        description="Simulate fields on a 64x64 grid over the unit square and write them, "
        "with every generative factor, its unit and the recipe, to an .npz file.",
    )
    p.add_argument("simulator", choices=("source", "conductivity"))
    p.add_argument("--n", type=int, required=True, help="number of fields to simulate")
    p.add_argument("--seed", type=int, required=True, help="seed (same seed, same data)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DATA.npz",
        help="the data file to write (what `invprior train --data` reads)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate and save; prints one JSON line with the recipe.

    ``--n``, ``--seed`` and the output path are checked before simulating; bad input
    raises :class:`~invprior.validation.InputError`.
    """
    if args.n < 1:
        raise InputError(f"--n must be a positive integer (number of fields), got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    check_writable(args.out, "--out")
    from invprior.priors.simulate import simulate  # after the checks: it takes seconds

    data = simulate(args.simulator, args.n, args.seed)
    path = data.save(args.out)
    print(
        json.dumps(
            {
                "out": str(path),
                "n": len(data),
                "seed": args.seed,
                "simulator": args.simulator,
                "aux_names": list(data.aux_names),
            }
        )
    )
    return 0
