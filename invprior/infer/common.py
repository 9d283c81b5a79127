# SPDX-License-Identifier: MIT
"""Helpers shared by the inference routines: seeding, solve counts, the root rank."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import numpy as np
import torch

from ..model import ForwardMap

__all__ = ["child_seeds", "is_root", "seeded", "solve_counts", "solves_since"]


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's generators seeded, restoring their state afterwards.

    Args:
        seed: Seed for the CPU generator and, for a CUDA ``device``, that device's generator.
        device: Device the random numbers are drawn on.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def child_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent seeds derived from ``seed`` (``numpy.random.SeedSequence.spawn``)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def solve_counts(forward: ForwardMap | None) -> dict[str, int] | None:
    """Forward and adjoint PDE solves of ``forward`` so far (its ``counter``); None for None."""
    if forward is None:
        return None
    counter = forward.counter
    return {"forward": int(counter.forward), "adjoint": int(counter.adjoint)}


def solves_since(
    before: dict[str, int] | None, forward: ForwardMap | None
) -> dict[str, int] | None:
    """Solves done since the snapshot ``before`` (from :func:`solve_counts`), or None."""
    after = solve_counts(forward)
    if after is None or before is None:
        return None
    return {key: after[key] - before[key] for key in after}


def is_root() -> bool:
    """True unless MPI is in use and this is not rank 0 (mpi4py is never imported here)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is None or not mpi.Is_initialized() or mpi.COMM_WORLD.rank == 0
