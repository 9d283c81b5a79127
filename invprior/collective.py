# SPDX-License-Identifier: MIT
"""Errors agreed across MPI ranks: a failure on one rank is a failure on all, never a hang.

When one rank does work the others do not (rank 0 writes a file, checks a folder) and a
collective call follows, an exception on that rank alone would leave the others blocked
in the collective forever. :func:`raise_together` wraps such rank-local work: at its end
the ranks exchange an error flag and message (one ``allgather``), and every rank raises
(its own error, or the first failing rank's). :func:`on_root` runs a function on rank 0
only and hands its result, or its error, to every rank. :func:`staged_folder` builds an
output folder's new content in a partial sibling and swaps it in as one unit
(:mod:`invprior.fileio`), agreeing on errors throughout.

Another rank's :class:`invprior.validation.InputError` is raised again as an
``InputError`` with the same message (so every rank of the ``invprior`` command exits
with status 2 and rank 0 prints the message), its ``KeyboardInterrupt`` (``SIGTERM`` or
``Ctrl-C`` on that rank) as a ``KeyboardInterrupt`` with the same message (or one naming
the rank), and any other error as a
:class:`RuntimeError` naming the rank and the error. An interrupted rank still takes part
in the exchange, so it waits until the other ranks reach the end of the block (or are
interrupted too, as ``mpiexec`` interrupts every rank): what the block cleans up on an
error (rank 0 deleting a partial folder) never races another rank still writing.

This module never imports mpi4py; it only calls ``rank``, ``allgather`` and ``bcast`` of
the communicators it is given, so :mod:`invprior.pde` may use it too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .fileio import discard, partial_folder, swap_folder
from .validation import InputError

__all__ = ["on_root", "raise_together", "staged_folder"]


def _report(err: BaseException) -> tuple[str, str]:
    """What another rank needs to raise the same kind of error: (kind, message)."""
    if isinstance(err, InputError):
        return "input", str(err)
    if isinstance(err, KeyboardInterrupt):
        return "interrupt", str(err)
    return "error", f"{type(err).__name__}: {err}"


def _error(rank: int, report: tuple[str, str]) -> BaseException:
    kind, message = report
    if kind == "input":
        return InputError(message)
    if kind == "interrupt":
        return KeyboardInterrupt(message or f"MPI rank {rank} was interrupted")
    return RuntimeError(f"MPI rank {rank} failed: {message}")


@contextmanager
def raise_together(comm: object) -> Iterator[None]:
    """Raise on every rank of ``comm`` if the ``with`` block raised on any of them.

    Collective on ``comm``: every rank must enter and leave the block (the block itself
    may differ between ranks, and may hold no collective call of ``comm`` that a failing
    rank would skip). At its end the ranks exchange error flags; a rank whose block raised
    (``KeyboardInterrupt`` included) re-raises its own error, the others raise the first
    failing rank's (see the module docstring).

    Args:
        comm: MPI communicator (mpi4py), or any object with ``rank`` and ``allgather``.

    Raises:
        InputError: If a rank's block raised one (same message on every rank).
        KeyboardInterrupt: If a rank's block was interrupted.
        RuntimeError: If another rank's block raised another exception.

    Example:
        >>> from mpi4py import MPI
        >>> comm = MPI.COMM_WORLD
        >>> with raise_together(comm):
        ...     if comm.rank == 0:
        ...         pass  # work of rank 0 alone; an error here is raised on every rank
    """
    try:
        yield
    except BaseException as err:
        comm.allgather(_report(err))
        raise
    reports = comm.allgather(None)
    failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
    if failed:
        raise _error(*failed[0])


def on_root[T](comm: object, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` run on rank 0 only; its result, or its error, on every rank.

    Collective on ``comm`` (one ``bcast``). The result must be picklable.

    Args:
        comm: MPI communicator (mpi4py), or any object with ``rank`` and ``bcast``.
        fn: The function; called on rank 0 only.
        *args: Its arguments.

    Returns:
        What ``fn`` returned on rank 0, on every rank.

    Raises:
        InputError: If ``fn`` raised one (same message on every rank).
        KeyboardInterrupt: If ``fn`` was interrupted.
        RuntimeError: On the other ranks, if ``fn`` raised another exception.
    """
    if comm.rank == 0:
        try:
            result = fn(*args)
        except BaseException as err:
            comm.bcast((_report(err), None), root=0)
            raise
        comm.bcast((None, result), root=0)
        return result
    report, result = comm.bcast(None, root=0)
    if report is not None:
        raise _error(0, report)
    return result


@contextmanager
def staged_folder(comm: object, folder: str | os.PathLike) -> Iterator[Path]:
    """Build the content of ``folder`` in a partial sibling; swap it in if all ranks succeed.

    Collective on ``comm``, and the folder must lie on a file system all ranks see. Rank 0
    makes the partial folder (:func:`invprior.fileio.partial_folder`, which also removes
    the partial folders of killed runs) and every rank receives its path; the block writes
    into it (the ranks may write different files, and the block is wrapped in
    :func:`raise_together`); then rank 0 puts it in place of ``folder``
    (:func:`invprior.fileio.swap_folder`). On any exception, ``KeyboardInterrupt``
    included, rank 0 removes the partial folder once every rank has left the block, and
    ``folder`` keeps its previous content.

    Args:
        comm: MPI communicator (mpi4py).
        folder: The output folder (need not exist).

    Yields:
        The partial folder, the same path on every rank.

    Raises:
        InputError, KeyboardInterrupt, RuntimeError: As :func:`raise_together`, on every
            rank.
    """
    partial = on_root(comm, partial_folder, folder)
    try:
        with raise_together(comm):
            yield partial
        on_root(comm, swap_folder, partial, folder)
    except BaseException:
        if comm.rank == 0:
            discard(partial)
        raise
