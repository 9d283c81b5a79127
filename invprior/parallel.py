# SPDX-License-Identifier: MIT
r"""MCMC chains across MPI rank groups.

With :math:`N` ranks and :math:`C` chains the communicator is split into
:math:`G = \min(C, N)` groups of :math:`k = N / G` consecutive ranks (:math:`G` must divide
:math:`N`). Group :math:`g` holds ranks :math:`gk, \dots, gk + k - 1`, its own copy of the
mesh distributed over them, and runs chains :math:`g, g + G, g + 2G, \dots` one after
another; so every chain runs exactly once, group 0 holds rank 0, and no group runs more
than :math:`\lceil C / G \rceil` chains. Chain :math:`c` starts and is seeded as in the
sequential run (see :func:`invprior.infer.nuts`, argument ``chains``), so the chains
gathered from all groups equal the sequential run's up to solver tolerance.

Typical use, collective on ``comm``::

    group_comm, chains = split_chains(comm, config.num_chains)
    problem = ...  # forward model on a mesh over group_comm
    result = infer.nuts(problem, obs, init=start, seed=seed, config=config, chains=chains)
    result = gather_chains(result, comm, group_comm)  # every chain, on every rank

The Pyro kernel never sees a communicator: the forward model holds the group's. This
module never imports mpi4py; it only calls methods of the communicators it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from .infer import MCMCResult

__all__ = ["chain_group", "gather_chains", "merge_chains", "split_chains"]


def chain_group(rank: int, size: int, num_chains: int) -> tuple[int, tuple[int, ...]]:
    r"""The rank group of ``rank`` and the chains that group runs.

    With :math:`G = \min(C, N)` groups of :math:`k = N / G` ranks, rank :math:`r` is in
    group :math:`g = \lfloor r / k \rfloor`, which runs chains
    :math:`\{c < C : c \equiv g \pmod G\}`.

    Args:
        rank: Rank :math:`r` in the communicator, ``0 <= rank < size``.
        size: Number of ranks :math:`N`.
        num_chains: Number of chains :math:`C`.

    Returns:
        The group index :math:`g` and its chains in increasing order.

    Raises:
        ValueError: If :math:`G` does not divide :math:`N`, or an argument is out of range.

    Example:
        >>> [chain_group(r, 4, 2) for r in range(4)]  # 2 groups of 2 ranks
        [(0, (0,)), (0, (0,)), (1, (1,)), (1, (1,))]
        >>> chain_group(1, 2, 5)  # 2 groups of 1 rank
        (1, (1, 3))
    """
    if size < 1 or num_chains < 1 or not 0 <= rank < size:
        raise ValueError(
            f"need size >= 1, num_chains >= 1 and 0 <= rank < size, got rank={rank}, "
            f"size={size}, num_chains={num_chains}"
        )
    groups = min(num_chains, size)
    if size % groups:
        raise ValueError(
            f"{size} MPI ranks cannot be split into {num_chains} equal groups, one per chain; "
            f"run on a multiple of {num_chains} ranks, or with num_chains >= {size} (then "
            f"each rank runs its own chains)"
        )
    group = rank // (size // groups)
    return group, tuple(range(group, num_chains, groups))


def split_chains(comm: object, num_chains: int) -> tuple[object, tuple[int, ...]]:
    """Split ``comm`` into rank groups, one chain or more each (see :func:`chain_group`).

    Collective on ``comm``.

    Args:
        comm: The MPI communicator of all ranks (mpi4py).
        num_chains: Number of chains.

    Returns:
        The communicator of this rank's group (for its mesh) and the chains it runs.

    Raises:
        ValueError: As :func:`chain_group`, on every rank.
    """
    group, chains = chain_group(comm.rank, comm.size, num_chains)
    return comm.Split(color=group, key=comm.rank), chains


def merge_chains(parts: Sequence[MCMCResult], device: torch.device | None = None) -> MCMCResult:
    """Results of disjoint sets of chains of one run as one result, chains in index order.

    Args:
        parts: Results of :func:`invprior.infer.nuts` or :func:`invprior.infer.hmc` with the
            same settings whose ``chains`` together are ``0, ..., num_chains - 1``.
        device: Device of the merged tensors (default the first part's).

    Returns:
        One :class:`invprior.infer.MCMCResult` with all chains.

    Raises:
        ValueError: If the parts differ in settings or kernel, or do not hold every chain
            exactly once.
    """
    first = parts[0]
    if any(p.config != first.config or p.kernel != first.kernel for p in parts):
        raise ValueError("parts come from runs with different settings or kernels")
    chain_stats = [s for p in parts for s in p.chain_stats]
    ids = [s["chain"] for s in chain_stats]
    if sorted(ids) != list(range(first.config.num_chains)):
        raise ValueError(
            f"parts hold chains {ids}, expected each of 0..{first.config.num_chains - 1} "
            "once; run every group on its chains from split_chains"
        )
    device = first.latent.device if device is None else device
    order = np.argsort(ids)
    index = torch.as_tensor(order, device=device)

    def cat(values: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([v.to(device) for v in values])[index]

    return dataclasses.replace(
        first,
        samples={name: cat([p.samples[name] for p in parts]) for name in first.samples},
        latent=cat([p.latent for p in parts]),
        sample_stats={
            key: np.concatenate([p.sample_stats[key] for p in parts])[order]
            for key in first.sample_stats
        },
        chain_stats=[chain_stats[i] for i in order],
    )


def gather_chains(result: MCMCResult, comm: object, group_comm: object) -> MCMCResult:
    """Every group's chains on every rank, as one result in chain order.

    Collective on ``comm``. Ranks of a group hold the same chains, so each rank exchanges
    them only with the ranks of the same position in the other groups (one copy per
    group, sent as CPU tensors).

    Args:
        result: This rank's group's chains.
        comm: The communicator that :func:`split_chains` split.
        group_comm: This rank's group communicator from :func:`split_chains`.

    Returns:
        The :class:`invprior.infer.MCMCResult` of all chains, on ``result``'s device.

    Raises:
        ValueError: As :func:`merge_chains`.
    """
    across = comm.Split(color=group_comm.rank, key=comm.rank)
    cpu = dataclasses.replace(
        result,
        samples={name: value.cpu() for name, value in result.samples.items()},
        latent=result.latent.cpu(),
    )
    parts = across.allgather(cpu)
    across.Free()
    return merge_chains(parts, device=result.latent.device)
