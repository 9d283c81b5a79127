# SPDX-License-Identifier: MIT
"""Sub-commands of ``invprior``; each module defines ``add_parser(subparsers)``.

Modules import their heavy dependencies inside ``func`` so ``invprior --help`` is fast.

An option means one thing in every sub-command:

- ``--out`` is the path of what the command writes, its metavar saying which kind: the
  output ``FOLDER`` of ``run``, ``compare`` and ``evaluate-prior``, the ``DATA.npz`` file
  of ``simulate`` (what ``train --data`` reads) and the ``CHECKPOINT`` of ``train`` (the
  path without suffix of ``CHECKPOINT.safetensors`` + ``CHECKPOINT.json``, as ``--base``,
  ``evaluate-prior`` and ``[prior] name`` take it).
- ``--n`` is a number of simulated fields, ``--seed`` the seed of the command's own random
  draws, ``--threads`` the torch threads per process.
"""

from __future__ import annotations

import argparse

from invprior.validation import InputError

__all__ = ["add_threads_option", "check_threads"]


def add_threads_option(parser: argparse.ArgumentParser, default: int | None) -> None:
    """Add ``--threads N``, torch threads per process (None: torch's own default)."""
    shown = "torch's default" if default is None else default
    parser.add_argument(
        "--threads",
        type=int,
        default=default,
        metavar="N",
        help=f"torch threads per process (default {shown}; the generators are small, so "
        "more threads mostly add synchronisation: use MPI ranks for parallel work)",
    )


def check_threads(threads: int | None) -> None:
    """InputError unless ``threads`` (``--threads``) is None or at least 1."""
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1 (torch threads per process), got {threads}")
