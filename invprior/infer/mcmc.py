# SPDX-License-Identifier: MIT
r"""Hamiltonian Monte Carlo and NUTS over the unconstrained latent of a Pyro model.

The model is an :class:`~invprior.model.InverseProblem` or any Pyro model whose latent
sites are continuous, called as ``model(obs)``. Both wrap Pyro's kernels around its
potential (:func:`invprior.potential.potential_energy`): step size
adaptation by dual averaging and mass matrix adaptation during warm-up, a dense mass
matrix for small latents. Chains run one after another in this process, each driven
iteration by iteration as Pyro's ``MCMC(num_chains=1)`` drives it (same draws), never
through Pyro's multiprocessing: the forward model may hold MPI communicators and PETSc
objects. Chain :math:`c` of ``num_chains`` always starts at the :math:`c`-th start and
draws from the :math:`c`-th of ``child_seeds(seed, num_chains)``, so a process may run any
subset ``chains`` of them and the subsets of several MPI rank groups, gathered
(:func:`invprior.parallel.gather_chains`), are the full run. Each chain starts at the MAP
unless told otherwise. A PDE solver failure becomes a divergence.

With a :class:`~invprior.infer.checkpoint.SamplingCheckpoint` every chain is saved as it
goes, and on SIGINT (or SIGTERM turned into ``KeyboardInterrupt``) once more before
:class:`~invprior.infer.checkpoint.SamplingInterrupted` is raised; a run resumed from the
checkpoint gives the draws of an uninterrupted one, bit for bit.

Per draw the result keeps ``diverging``, ``step_size``, ``n_steps`` (leapfrog steps),
``accept_prob``, ``energy`` (the Hamiltonian :math:`U(\zeta) + K(p)` right after the
momentum refresh that starts the transition, which the trajectory conserves up to its
integration error: the energy that E-BFMI [3] reads), ``lp`` (:math:`-U(\zeta)` of the
draw, the log density on the unconstrained space, Jacobian included) and, for NUTS,
``tree_depth`` (:math:`\lceil \log_2(n_{steps} + 1) \rceil`, exact for Pyro's doubling
scheme); ``n_steps`` and ``tree_depth`` are integers. Per chain it keeps its index, the
PDE solves and the wall time.

References:
    [1] M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler: Adaptively Setting Path Lengths in
        Hamiltonian Monte Carlo", JMLR 15 (2014), https://arxiv.org/abs/1111.4246
    [2] M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017),
        https://arxiv.org/abs/1701.02434
    [3] M. Betancourt, "Diagnosing Suboptimal Cotangent Disintegrations in Hamiltonian
        Monte Carlo" (2016), https://arxiv.org/abs/1604.00695
    [4] Stan's additional U-turn checks across subtrees, https://github.com/stan-dev/stan/pull/2800,
        after "NUTS misses U-turns, runs in circles until max treedepth",
        https://discourse.mc-stan.org/t/nuts-misses-u-turns-runs-in-circles-until-max-treedepth/9727
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer.mcmc.logger import ProgressBar
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

from ..model import InverseProblem
from ..potential import Potential, potential_energy
from ..sites import FIELD
from ..validation import InputError, check_field_types
from .checkpoint import (
    ChainState,
    ChainStore,
    SamplingCheckpoint,
    SamplingInterrupted,
    config_hash,
    restore_rng,
    rng_state,
    signals_held,
)
from .common import child_seeds, is_root, seeded, solve_counts, solves_since
from .laplace_approximation import laplace
from .map_estimate import MapResult, find_map
from .pyro_shim import (
    DrawRecorder,
    EnergyHMC,
    EnergyNUTS,
    InitialMass,
    SubtreeJoins,
    TreeEnds,
    kernel_state,
    restore_kernel,
)

__all__ = ["MCMCConfig", "MCMCResult", "hmc", "nuts"]


#: Fewest draws per chain :class:`MCMCConfig` accepts.
MIN_DRAWS_PER_CHAIN = 4


@dataclass(frozen=True)
class MCMCConfig:
    """Settings of :func:`hmc` and :func:`nuts` (Pyro's names).

    Attributes:
        num_samples: Draws kept per chain, at least :data:`MIN_DRAWS_PER_CHAIN` (Pyro's
            split R-hat, computed for every chain, halves it and needs 2 per half).
        warmup_steps: Adaptation steps per chain (discarded).
        num_chains: Chains, run one after another (or split over MPI rank groups, see
            :mod:`invprior.parallel`).
        target_accept_prob: Target of step size adaptation.
        max_tree_depth: NUTS only: maximum doublings per draw.
        step_size: Initial step size.
        num_steps: HMC only: leapfrog steps per draw at the initial step size; Pyro keeps
            the trajectory length ``step_size * num_steps`` fixed while adapting.
        full_mass: Dense mass matrix; None means dense when the latent has at most
            ``max_dense_dim`` coordinates, diagonal otherwise.
        max_dense_dim: Threshold for ``full_mass=None``.
        init_mass: Inverse mass matrix that warm-up starts from: ``"laplace"`` (the
            Gauss-Newton Laplace covariance at the chains' start, dense mass only: ``n_obs``
            adjoint solves once, and far fewer leapfrog steps on tight posteriors) or
            ``"identity"`` (Pyro's default). Warm-up adapts it further either way.
        adapt_mass: Adapt the mass matrix during warm-up (Pyro's ``adapt_mass_matrix``;
            ChEES: a diagonal rescaling of its preconditioner). False keeps the initial one
            (the Laplace covariance with ``init_mass="laplace"``) fixed; NUTS then also
            checks for U-turns across subtrees [4], which a fixed step size on a posterior
            the fixed mass makes isotropic would otherwise miss.
        max_leapfrog_steps: ChEES only: leapfrog steps per iteration at most.
        store_field: Keep the decoded field of every draw in the result.
        disable_progbar: Hide the progress bar (always hidden on MPI ranks other than 0).
    """

    num_samples: int = 500
    warmup_steps: int = 500
    num_chains: int = 2
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    step_size: float = 1.0
    num_steps: int = 16
    full_mass: bool | None = None
    max_dense_dim: int = 64
    init_mass: str = "laplace"
    adapt_mass: bool = True
    max_leapfrog_steps: int = 1023
    store_field: bool = True
    disable_progbar: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)
        minimum = {"num_samples": MIN_DRAWS_PER_CHAIN, "num_chains": 1, "max_tree_depth": 1}
        minimum |= {"num_steps": 1, "warmup_steps": 0, "max_dense_dim": 0}
        minimum |= {"max_leapfrog_steps": 1}
        for name, least in minimum.items():
            if getattr(self, name) < least:
                why = " (split R-hat halves each chain)" if name == "num_samples" else ""
                raise InputError(f"{name} must be >= {least}{why}, got {getattr(self, name)}")
        if not 0 < self.target_accept_prob < 1:
            raise InputError(
                f"target_accept_prob must lie in (0, 1), got {self.target_accept_prob}"
            )
        if not self.step_size > 0:
            raise InputError(f"step_size must be > 0, got {self.step_size}")
        if self.init_mass not in ("laplace", "identity"):
            raise InputError(f"init_mass must be 'laplace' or 'identity', got {self.init_mass!r}")


@dataclass(frozen=True)
class MCMCResult:
    """Draws of every site grouped by chain, with sampler statistics.

    Attributes:
        samples: Site values in physical units, shapes ``(chain, draw, *event_shape)``:
            the named variables, ``e_aux``, ``z_aux``, ``z_rec`` and (if stored) ``field``.
        latent: Unconstrained latent draws, shape ``(chain, draw, dim)``.
        sample_stats: Per-draw statistics, arrays of shape ``(chain, draw)``.
        chain_stats: Per chain: ``chain`` (its index among ``config.num_chains``),
            ``wall_s``, ``pde_solves`` (or None), ``num_evals``, ``num_divergences``, final
            ``step_size``.
        config: The settings used.
        kernel: ``"NUTS"`` or ``"HMC"``.
    """

    samples: dict[str, torch.Tensor] = field(repr=False)
    latent: torch.Tensor = field(repr=False)
    sample_stats: dict[str, np.ndarray] = field(repr=False)
    chain_stats: list[dict[str, object]]
    config: MCMCConfig
    kernel: str

    @property
    def num_divergences(self) -> int:
        """Divergent transitions after warm-up, over all chains."""
        return int(self.sample_stats["diverging"].sum())

    @property
    def pde_solves(self) -> dict[str, int] | None:
        """PDE solves over all chains (warm-up included), or None without a counter."""
        counts = [c["pde_solves"] for c in self.chain_stats]
        if any(c is None for c in counts):
            return None
        return {key: sum(c[key] for c in counts) for key in ("forward", "adjoint")}


class _NUTS(InitialMass, EnergyNUTS):
    """NUTS whose warm-up may start from a given inverse mass matrix."""


class _SubtreeUTurn(SubtreeJoins):
    r"""NUTS mixin: the no-U-turn criterion also across the two parts of every join [4].

    Pyro checks the criterion only between the two ends of a joined trajectory. Where the
    posterior is isotropic in the metric of the mass matrix (a Gaussian posterior with its
    exact covariance as the inverse mass) and the step size is fixed, every coordinate
    turns with the same period, and at step sizes just above
    :math:`2 \sin(\pi / (2^k - 1))` a doubling spans a little more than whole periods: the
    two ends then look as if the trajectory had not turned, and every transition doubles on
    for several more periods, often up to ``max_tree_depth``. During warm-up the step size
    changes every iteration, so only a few transitions meet such a step size; after it, all
    of them do. Like Stan, each join of a left part ``L`` and a right part ``R`` (the two
    halves of a subtree, or the trajectory so far and a new subtree, as
    :class:`~invprior.infer.pyro_shim.SubtreeJoins` finds them) is also checked over ``L``
    with the first state of ``R`` and over the last state of ``L`` with ``R``; the checks
    are symmetric in the tree, so the transition stays reversible. Only the stopping
    changes: no extra evaluation, no extra random number.
    """

    def turns_across(self, left: TreeEnds, right: TreeEnds) -> bool:
        """Whether ``L`` with the first state of ``R``, or the last of ``L`` with ``R``, turn."""
        with_first = {key: left.r_sum[key] + right.r_left[key] for key in left.r_sum}
        with_last = {key: right.r_sum[key] + left.r_right[key] for key in right.r_sum}
        return self.u_turn(left.r_left, right.r_left, with_first) or self.u_turn(
            left.r_right, right.r_right, with_last
        )


class _FixedMassNUTS(_SubtreeUTurn, _NUTS):
    """NUTS for a mass matrix that warm-up leaves as it is (``adapt_mass=False``).

    With the Laplace covariance of a near-Gaussian posterior as the fixed inverse mass, the
    posterior is nearly isotropic in its metric, the case :class:`_SubtreeUTurn` guards
    against. Adapted runs keep Pyro's criterion alone, and so their draws.
    """


class _HMC(InitialMass, EnergyHMC):
    """HMC whose warm-up may start from a given inverse mass matrix."""


@dataclass(frozen=True)
class _Snapshot:
    """A chain after a completed iteration (tensors cloned), not yet written."""

    iteration: int
    kernel_tensors: dict[str, torch.Tensor]
    kernel_scalars: dict[str, object]
    rng: dict[str, torch.Tensor]
    counters: dict[str, object]
    running: dict[str, float]


class _ChainSaver:
    """Snapshots of one chain after every iteration, written as its checkpoint says.

    A snapshot is taken only after a completed iteration, so an interrupt in the middle of
    one loses that iteration alone: the chain continues from the snapshot before it. Where
    this process does not write, only the count of iterations is kept.
    """

    def __init__(
        self,
        store: ChainStore,
        chain: int,
        recorder: DrawRecorder,
        draws: list[torch.Tensor],
        warmup_steps: int,
        saved: int,
    ) -> None:
        self.store, self.chain, self.recorder, self.draws = store, chain, recorder, draws
        self.warmup_steps = warmup_steps
        self.saved = saved  # iterations in the file
        self._saved_at = time.monotonic()
        self._snapshot: _Snapshot | None = None

    def take(
        self,
        kernel: MCMCKernel,
        iteration: int,
        counters: dict[str, object],
        device: torch.device,
    ) -> None:
        """Snapshot the chain after ``iteration`` iterations; write it if a save is due.

        Args:
            kernel: The set-up kernel.
            iteration: Iterations done (warm-up included).
            counters: The chain's counters so far.
            device: The device the chain runs on (whose generator is saved).
        """
        if not self.store.writes:
            self.saved = iteration
            return
        tensors, scalars = kernel_state(kernel)
        rng = rng_state(device)
        self._snapshot = _Snapshot(
            iteration, tensors, scalars, rng, counters, self.recorder.running()
        )
        every = self.store.checkpoint
        since = time.monotonic() - self._saved_at
        if iteration - self.saved >= every.every or since >= every.every_s:
            self.save()

    def save(self) -> int:
        """Write the latest snapshot if it is newer than the file; returns its iterations."""
        snap = self._snapshot
        if snap is None or snap.iteration <= self.saved:
            return self.saved
        num_draws = max(snap.iteration - self.warmup_steps, 0)
        draws = self.draws[:num_draws]
        stats = self.recorder.stats
        tensors = {
            **{f"kernel/{k}": v for k, v in snap.kernel_tensors.items()},
            **snap.rng,
            **{f"stats/{k}": torch.from_numpy(v[:num_draws].copy()) for k, v in stats.items()},
            "draws": torch.stack(draws) if draws else torch.zeros(0, 0),
        }
        scalars = {
            "iteration": snap.iteration,
            "kernel": snap.kernel_scalars,
            "chain": snap.counters,
            "recorder": snap.running,
        }
        self.store.save_chain(self.chain, ChainState(tensors, scalars))
        self.saved, self._saved_at = snap.iteration, time.monotonic()
        return snap.iteration


def initial_latents(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    init: MapResult | torch.Tensor | None,
    num_chains: int,
    seed: int,
) -> torch.Tensor:
    """Start of every chain, shape ``(num_chains, dim)``; the MAP when ``init`` is None."""
    if init is None:
        init = find_map(problem, obs, seed=seed)
    latent = init.latent if isinstance(init, MapResult) else torch.as_tensor(init)
    return latent.detach().expand(num_chains, *latent.shape[-1:]).clone()


def _initial_inverse_mass(
    problem: InverseProblem | Callable[..., object], obs: torch.Tensor, start: torch.Tensor
) -> torch.Tensor | None:
    """The Laplace covariance at ``start``, shape ``(dim, dim)`` (``n_obs`` adjoint solves).

    None, with a warning, where the Gauss-Newton Hessian is not positive definite.
    """
    try:
        return laplace(problem, obs, start).cov
    except ValueError as err:
        warnings.warn(
            f"warm-up starts from the identity mass matrix: {err}", RuntimeWarning, stacklevel=3
        )
        return None


def _chain_indices(chains: Sequence[int] | None, num_chains: int) -> tuple[int, ...]:
    """The chains to run, ``range(num_chains)`` when None; checked to be distinct indices."""
    if chains is None:
        return tuple(range(num_chains))
    indices = tuple(int(c) for c in chains)
    if (
        not indices
        or len(set(indices)) != len(indices)
        or not set(indices) <= set(range(num_chains))
    ):
        raise ValueError(
            f"chains must be distinct indices in range({num_chains}) (num_chains), got "
            f"{list(chains)}; pass a subset of the chains or None for all of them"
        )
    return indices


class _ChainInterrupted(KeyboardInterrupt):
    """A chain stopped by an interrupt after ``saved`` iterations were saved."""

    def __init__(self, saved: int) -> None:
        super().__init__(saved)
        self.saved = saved


def _chain_counters(
    potential: Potential, saved: ChainState | None
) -> Callable[[], dict[str, object]]:
    """A function giving the chain's wall time, evaluations and PDE solves so far.

    Counted from now on and added to those of the ``saved`` chain, so a resumed chain
    reports the evaluations and solves of an uninterrupted one (and the wall time of all
    its sessions).
    """
    forward = potential.forward
    before, tic = solve_counts(forward), time.perf_counter()
    past = saved.scalars["chain"] if saved is not None else None

    def counters() -> dict[str, object]:
        solves = solves_since(before, forward)
        wall_s, num_evals = time.perf_counter() - tic, potential.num_evals
        if past is not None:
            wall_s, num_evals = wall_s + past["wall_s"], num_evals + past["num_evals"]
            if solves is not None:
                solves = {key: solves[key] + past["pde_solves"][key] for key in solves}
        return {"wall_s": wall_s, "num_evals": num_evals, "pde_solves": solves}

    return counters


def _resume_chain(
    kernel: MCMCKernel,
    recorder: DrawRecorder,
    saved: ChainState,
    start: torch.Tensor,
) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Put a saved chain back into ``kernel``, torch's generators and ``recorder``.

    Returns:
        The current latent (the ``params`` of the next iteration) and the draws so far,
        each of shape ``(dim,)``.
    """
    kernel_tensors = {
        key.removeprefix("kernel/"): value
        for key, value in saved.tensors.items()
        if key.startswith("kernel/")
    }
    params = restore_kernel(kernel, kernel_tensors, saved.scalars["kernel"], start)
    restore_rng(saved.tensors, start.device)
    recorder.restore(saved.tensors, saved.scalars["recorder"])
    return params, list(saved.tensors["draws"].to(start.device).unbind())


def _run_chain(
    kernel: MCMCKernel,
    potential: Potential,
    start: torch.Tensor,
    seed: int,
    config: MCMCConfig,
    recorder: DrawRecorder,
    store: ChainStore | None,
    chain: int,
) -> tuple[torch.Tensor, np.ndarray, dict[str, object]]:
    """One chain from ``start`` ``(dim,)``, or from where ``store`` saved it.

    Drives the kernel as Pyro's ``MCMC`` does (``setup``, then ``sample`` per iteration
    under ``poutine.block`` with validation off, seeded with ``seed``), so the draws are
    those of ``MCMC(kernel, ...).run()``; with a ``store`` the chain is snapshotted after
    every iteration and saved as its checkpoint says.

    Returns:
        Latent draws ``(draw, dim)``, divergences ``(draw,)`` and the chain's counters
        (``wall_s``, ``num_evals``, ``pde_solves``).

    Raises:
        KeyboardInterrupt: On SIGINT (or SIGTERM turned into it); with a ``store``, a
            ``_ChainInterrupted`` raised once the latest snapshot is saved.
    """
    total = config.warmup_steps + config.num_samples
    saved = store.load_chain(chain) if store is not None and store.checkpoint.resume else None
    counters = _chain_counters(potential, saved)
    draws: list[torch.Tensor] = []
    saver = None
    if store is not None:
        done = saved.iteration if saved is not None else 0
        saver = _ChainSaver(store, chain, recorder, draws, config.warmup_steps, done)
    progress = ProgressBar(
        config.warmup_steps, config.num_samples, disable=config.disable_progbar or not is_root()
    )
    with seeded(seed, start.device), poutine.block(), pyro.validation_enabled(False):
        try:
            if saved is None:
                kernel.initial_params = potential.layout.unpack(start)
                kernel.setup(config.warmup_steps)
                params, done = kernel.initial_params, 0
            else:
                params, loaded = _resume_chain(kernel, recorder, saved, start)
                draws.extend(loaded)
                done = saved.iteration
            if saver is not None:
                saver.take(kernel, done, counters(), start.device)
            progress.update(done)
            for i in range(done, total):
                params = kernel.sample(params)
                warm = i < config.warmup_steps
                stage = "Warmup" if warm else "Sample"
                recorder(kernel, params, stage, i if warm else i - config.warmup_steps)
                if not warm:
                    draws.append(potential.layout.pack(params).detach())
                progress.set_description(stage, refresh=False)
                progress.set_postfix(kernel.logging(), refresh=False)
                progress.update()
                if saver is not None:
                    saver.take(kernel, i + 1, counters(), start.device)
            if saver is not None:
                saver.save()
        except KeyboardInterrupt as err:
            if saver is None:
                raise
            with signals_held():  # a second interrupt waits until the file is written
                saved_iterations = saver.save()
            raise _ChainInterrupted(saved_iterations) from err
        finally:
            progress.close()
    diverging = np.zeros(config.num_samples, dtype=bool)
    diverging[np.asarray(kernel.diagnostics()["divergences"], dtype=int)] = True
    kernel.cleanup()
    return torch.stack(draws), diverging, counters()


def _identity(
    config: MCMCConfig, kernel_name: str, seed: int, obs: torch.Tensor, full_mass: bool
) -> dict[str, str]:
    """Digests a checkpoint must match: sampler settings (not the display ones) and data."""
    settings = dataclasses.replace(config, disable_progbar=False, store_field=True)
    data = obs.detach().to("cpu").contiguous()
    return {
        "sampler": config_hash(kernel_name, seed, settings, full_mass),
        "data": config_hash(str(data.dtype), tuple(data.shape), data.numpy().tobytes()),
    }


def _starts_and_mass(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    config: MCMCConfig,
    init: MapResult | torch.Tensor | None,
    seed: int,
    full_mass: bool,
    store: ChainStore | None,
    indices: tuple[int, ...],
    dim: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Starts ``(num_chains, dim)`` and initial inverse mass ``(dim, dim)`` (or None).

    Computed (and saved in ``store``, for the chains ``indices`` run here) for a new run;
    read from ``store`` on resume.
    """
    if store is not None and store.checkpoint.resume:
        starts, inverse_mass = store.load_run()
        return starts.to(obs), None if inverse_mass is None else inverse_mass.to(obs)
    starts = initial_latents(problem, obs, init, config.num_chains, seed)
    if starts.shape[-1] != dim:
        raise ValueError(
            f"initial latent has {starts.shape[-1]} coordinates but the problem has "
            f"{dim}; pass the MAP of this problem or a latent of that size"
        )
    inverse_mass = None
    if full_mass and config.init_mass == "laplace":
        inverse_mass = _initial_inverse_mass(problem, obs, starts[0])
    if store is not None:
        store.save_run(starts, inverse_mass, indices)
    return starts, inverse_mass


def _run_chains(
    make_kernel: Callable[[Potential, bool, torch.Tensor | None], MCMCKernel],
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    config: MCMCConfig,
    init: MapResult | torch.Tensor | None,
    seed: int,
    kernel_name: str,
    chains: Sequence[int] | None,
    checkpoint: SamplingCheckpoint | None,
) -> MCMCResult:
    """Run the chains ``chains`` (default all) one after another and collect the results.

    Starts, seeds and the initial mass matrix are those of all ``config.num_chains``
    chains, so chain ``c`` is the same whichever subset it runs in.
    """
    indices = _chain_indices(chains, config.num_chains)
    whole = potential_energy(problem, obs)
    dim = whole.layout.dim
    full_mass = config.full_mass if config.full_mass is not None else dim <= config.max_dense_dim
    store = None
    if checkpoint is not None:
        writes = checkpoint.write if checkpoint.write is not None else is_root()
        identity = _identity(config, kernel_name, seed, obs, full_mass)
        store = ChainStore(checkpoint, identity, writes)
    starts, inverse_mass = _starts_and_mass(
        problem, obs, config, init, seed, full_mass, store, indices, dim
    )
    seeds = child_seeds(seed, config.num_chains)
    total = config.warmup_steps + config.num_samples
    latents, stats, chain_stats = [], [], []
    for n, chain in enumerate(indices):
        potential = potential_energy(problem, obs)
        recorder = DrawRecorder(potential, config.num_samples, kernel_name == "NUTS")
        kernel = make_kernel(potential, full_mass, inverse_mass)
        start = starts[chain].to(potential.obs)
        try:
            latent, diverging, counters = _run_chain(
                kernel, potential, start, seeds[chain], config, recorder, store, chain
            )
        except KeyboardInterrupt as err:
            if store is None:
                raise
            done = n * total + (err.saved if isinstance(err, _ChainInterrupted) else 0)
            raise SamplingInterrupted(done, len(indices) * total, store.folder) from None
        latents.append(latent)
        stats.append({**recorder.stats, "diverging": diverging})
        chain_stats.append(
            {
                "chain": chain,
                "wall_s": counters["wall_s"],
                "pde_solves": counters["pde_solves"],
                "num_evals": counters["num_evals"],
                "num_divergences": int(diverging.sum()),
                "step_size": float(kernel.step_size),
            }
        )
    latent = torch.stack(latents)
    return MCMCResult(
        samples=site_draws(whole, latent, config.store_field),
        latent=latent,
        sample_stats={key: np.stack([s[key] for s in stats]) for key in stats[0]},
        chain_stats=chain_stats,
        config=config,
        kernel=kernel_name,
    )


def site_draws(
    potential: Potential, latent: torch.Tensor, store_field: bool
) -> dict[str, torch.Tensor]:
    """All latent and deterministic sites of draws ``(chain, draw, dim)``, chain by chain."""
    per_chain = []
    with torch.no_grad():
        for chain_latent in latent:
            values = potential.constrain(potential.layout.unpack(chain_latent))
            sites = potential.sites(values)
            if not store_field:
                sites.pop(FIELD, None)
            per_chain.append(sites)
    return {name: torch.stack([s[name] for s in per_chain]) for name in per_chain[0]}


def nuts(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    *,
    init: MapResult | torch.Tensor | None = None,
    seed: int = 0,
    config: MCMCConfig | None = None,
    chains: Sequence[int] | None = None,
    checkpoint: SamplingCheckpoint | None = None,
    **kwargs: object,
) -> MCMCResult:
    """Sample the posterior with the No-U-Turn Sampler [1].

    Args:
        problem: The inverse problem, or any Pyro model whose latent sites are continuous,
            called as ``problem(obs)``; the initial Laplace mass matrix of such a model
            needs it twice differentiable in torch (or ``init_mass="identity"``).
        obs: Observed data, shape ``(n_obs,)`` for an inverse problem.
        init: Start of the chains: a :class:`MapResult`, an unconstrained latent of shape
            ``(dim,)`` or ``(num_chains, dim)``, or None to run :func:`find_map` first.
        seed: Seed of everything random (same seed, same chains).
        config: An :class:`MCMCConfig`; alternatively pass its fields as keyword arguments.
        chains: Indices of the chains to run here, a subset of ``range(num_chains)``
            (default all): chain ``c`` starts at the ``c``-th start and uses the ``c``-th
            of ``child_seeds(seed, num_chains)`` whichever subset it is run in, so the
            chains of MPI rank groups (:func:`invprior.parallel.split_chains`), gathered,
            are those of the full run.
        checkpoint: Save the chains as they go (a
            :class:`~invprior.infer.checkpoint.SamplingCheckpoint`), and with its
            ``resume`` continue the saved ones: the starts and initial mass matrix are then
            the saved ones (``init`` is not used) and the result is bit for bit that of an
            uninterrupted run. None (the default) saves nothing.
        **kwargs: Fields of :class:`MCMCConfig`.

    Returns:
        The :class:`MCMCResult` of the chains run, in the order of ``chains``.

    Raises:
        ValueError: If ``chains`` are not distinct indices below ``num_chains``, or the
            initial latent does not fit the problem.
        InputError: With ``checkpoint.resume``, if there is no checkpoint or it was made
            with other sampler settings, data or ``checkpoint.settings``.
        SamplingInterrupted: With a ``checkpoint``, on SIGINT (or SIGTERM turned into
            ``KeyboardInterrupt``) during sampling, once the progress is saved.

    Example:
        >>> result = nuts(problem, obs, num_samples=500, warmup_steps=500)  # doctest: +SKIP
        >>> result.samples["z_rec"].shape  # doctest: +SKIP
        torch.Size([2, 500, 8])
    """
    config = config if config is not None else MCMCConfig(**kwargs)

    def make_kernel(
        potential: Potential, full_mass: bool, inverse_mass: torch.Tensor | None
    ) -> MCMCKernel:
        kind = _NUTS if config.adapt_mass else _FixedMassNUTS
        return kind(
            potential_fn=potential,
            inverse_mass_matrix=inverse_mass,
            step_size=config.step_size,
            full_mass=full_mass,
            adapt_mass_matrix=config.adapt_mass,
            target_accept_prob=config.target_accept_prob,
            max_tree_depth=config.max_tree_depth,
        )

    return _run_chains(make_kernel, problem, obs, config, init, seed, "NUTS", chains, checkpoint)


def hmc(
    problem: InverseProblem | Callable[..., object],
    obs: torch.Tensor,
    *,
    init: MapResult | torch.Tensor | None = None,
    seed: int = 0,
    config: MCMCConfig | None = None,
    chains: Sequence[int] | None = None,
    checkpoint: SamplingCheckpoint | None = None,
    **kwargs: object,
) -> MCMCResult:
    """Sample the posterior with Hamiltonian Monte Carlo, ``config.num_steps`` per draw [2].

    Arguments and result as for :func:`nuts`.
    """
    config = config if config is not None else MCMCConfig(**kwargs)

    def make_kernel(
        potential: Potential, full_mass: bool, inverse_mass: torch.Tensor | None
    ) -> MCMCKernel:
        return _HMC(
            potential_fn=potential,
            inverse_mass_matrix=inverse_mass,
            step_size=config.step_size,
            num_steps=config.num_steps,
            full_mass=full_mass,
            adapt_mass_matrix=config.adapt_mass,
            target_accept_prob=config.target_accept_prob,
        )

    return _run_chains(make_kernel, problem, obs, config, init, seed, "HMC", chains, checkpoint)
