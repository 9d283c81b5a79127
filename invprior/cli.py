# SPDX-License-Identifier: MIT
"""The ``invprior`` command: one sub-command per module of :mod:`invprior.commands`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator

from . import commands
from .validation import InputError

__all__ = ["INTERRUPTED", "build_parser", "main"]

#: Exit status of a command stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report).
INTERRUPTED = 130


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


def _is_root() -> bool:
    """Whether this process is MPI rank 0 (or MPI is not in use)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is None or not mpi.Is_initialized() or mpi.COMM_WORLD.rank == 0


def _raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: raise ``KeyboardInterrupt``, so cleanup runs as after Ctrl-C."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` in the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Bad input (:class:`invprior.validation.InputError`, raised alike on every MPI rank)
    prints ``invprior <command>: error: <message>`` on rank 0 and returns 2. SIGINT and
    SIGTERM (turned into ``KeyboardInterrupt``, so ``finally`` blocks and cleanup run)
    print ``invprior <command>: interrupted`` on rank 0, followed by ``; <message>`` when
    the interrupt carries one (what was saved, how to continue), and return
    :data:`INTERRUPTED` without a traceback. Any other exception propagates, so Python
    prints its traceback and exits with status 1.
    """
    with _sigterm_interrupts():
        args = build_parser().parse_args(argv)
        try:
            return int(args.func(args) or 0)
        except InputError as err:
            if _is_root():
                print(f"invprior {args.command}: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as err:
            if _is_root():
                detail = f"; {err}" if str(err) else ""
                print(f"invprior {args.command}: interrupted{detail}", file=sys.stderr)
            return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
