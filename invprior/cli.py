# SPDX-License-Identifier: MIT
"""The ``invprior`` command: one sub-command per module of :mod:`invprior.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from . import commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser with every sub-command found in :mod:`invprior.commands`.

    Each module there defines ``add_parser(subparsers)``, which adds its sub-command and
    sets ``func(args) -> int`` as the parser default.
    """
    parser = argparse.ArgumentParser(
        prog="invprior",
        description="Bayesian inverse problems with disentangled deep generative priors.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
