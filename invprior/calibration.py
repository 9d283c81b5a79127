# SPDX-License-Identifier: MIT
r"""Simulation-based calibration (SBC) of the named parameters.

SBC [1] checks a posterior routine against the model it claims to invert. For problems
:math:`i = 1, \dots, N`: draw the latent sites from the prior, :math:`\theta_i \sim
p(\theta)` (named :math:`u_i`, ``e_aux``, ``z_rec``), simulate data from the same model,
:math:`y_i \sim p(y \mid \theta_i)`, draw :math:`L` posterior samples
:math:`u^{(1)}, \dots, u^{(L)}` of the named variables given :math:`y_i`, and record each
variable's rank

.. math::

    r_{ij} = \#\{l : u_j^{(l)} < u_{ij}\} \in \{0, \dots, L\}.

If the routine returns exact posterior draws, :math:`r_{\cdot j}` is uniform on
:math:`\{0, \dots, L\}`; a U-shaped histogram means an overconfident posterior, a hump an
underconfident one, a slope a bias. Uniformity is tested per variable with Pearson's
:math:`\chi^2` test on ``num_bins`` equal bins (:math:`L + 1` must be a multiple of it).

The default routine is MAP + Laplace (:func:`invprior.infer.laplace`), exact for a linear
generator, a linear forward map and Gaussian priors, and an approximation otherwise; pass
``posterior=`` to calibrate another one, e.g. :func:`mcmc_posterior` (NUTS, HMC or
ChEES-HMC from the MAP, the chains thinned to the draws).

References:
    [1] S. Talts, M. Betancourt, D. Simpson, A. Vehtari, A. Gelman, "Validating Bayesian
        inference algorithms with simulation-based calibration" (2018),
        https://arxiv.org/abs/1804.06788
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from pyro import poutine
from scipy.stats import binom, chisquare
from tqdm.auto import tqdm

from . import infer
from .cache import ResultCache
from .collective import on_root
from .infer.common import child_seeds, is_root, seeded
from .model import InverseProblem
from .sites import OBS

__all__ = ["SBCResult", "laplace_posterior", "mcmc_posterior", "plot_rank_histograms", "sbc_ranks"]

Posterior = Callable[[torch.Tensor, int], Mapping[str, torch.Tensor]]
"""``posterior(obs, seed) -> {name: draws of shape (num_draws,)}`` for every named variable."""


@dataclass(frozen=True)
class SBCResult:
    r"""Ranks of the true named values among posterior draws, and their uniformity tests.

    Attributes:
        names: The named variables.
        ranks: Rank of each truth, shape ``(num_problems, len(names))``, values in
            ``0 .. num_draws``.
        num_draws: Posterior draws per problem, :math:`L`.
        num_bins: Bins of the histograms and of the :math:`\chi^2` tests.
        p_values: ``{name: p}`` of the :math:`\chi^2` test of uniform ranks.
    """

    names: tuple[str, ...]
    ranks: np.ndarray
    num_draws: int
    num_bins: int
    p_values: dict[str, float]

    @classmethod
    def from_ranks(
        cls, names: Sequence[str], ranks: np.ndarray, num_draws: int, num_bins: int
    ) -> SBCResult:
        """The result of ``ranks`` (one row per problem), with its uniformity tests."""
        ranks = np.asarray(ranks, dtype=np.int64)
        p_values = {
            name: _uniformity_p_value(ranks[:, j], num_draws, num_bins)
            for j, name in enumerate(names)
        }
        return cls(tuple(names), ranks, num_draws, num_bins, p_values)

    def histograms(self) -> np.ndarray:
        """Counts per bin, shape ``(len(names), num_bins)``."""
        width = (self.num_draws + 1) // self.num_bins
        return np.stack([np.bincount(r // width, minlength=self.num_bins) for r in self.ranks.T])


def laplace_posterior(
    problem: InverseProblem, num_draws: int, map_config: infer.MapConfig | None = None
) -> Posterior:
    """The MAP + Laplace routine as a ``posterior(obs, seed)`` callable.

    Args:
        problem: The inverse problem.
        num_draws: Draws per call.
        map_config: Settings of the MAP search (default :class:`invprior.infer.MapConfig`).
    """

    def posterior(obs: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        start = infer.map(problem, obs, seed=seed, config=map_config)
        draws = infer.laplace(problem, obs, start).sample(num_draws, seed=seed)
        return {name: draws[name] for name in problem.prior.aux_names}

    return posterior


def mcmc_posterior(
    problem: InverseProblem,
    num_draws: int,
    config: infer.MCMCConfig,
    *,
    kernel: str = "nuts",
    map_config: infer.MapConfig | None = None,
) -> Posterior:
    """MAP, then MCMC from it, as a ``posterior(obs, seed)`` callable.

    The chains of one call are pooled and thinned evenly to ``num_draws`` draws (every
    chain gives the same share), so the ranks come from draws far apart in each chain, as
    SBC asks of autocorrelated samplers [1].

    Args:
        problem: The inverse problem.
        num_draws: Draws per call; at most ``num_chains * num_samples``.
        config: The sampler's settings.
        kernel: The sampler (:data:`invprior.infer.SAMPLERS`): ``"nuts"``, ``"hmc"`` or
            ``"chees"``.
        map_config: Settings of the MAP search the chains start from.

    Raises:
        ValueError: An unknown kernel, or fewer draws than ``num_draws`` per call.
    """
    if kernel not in infer.SAMPLERS:
        raise ValueError(f"kernel must be one of {sorted(infer.SAMPLERS)}, got {kernel!r}")
    total = config.num_chains * config.num_samples
    if total < num_draws:
        raise ValueError(
            f"{config.num_chains} chains x {config.num_samples} draws give {total} draws, "
            f"fewer than the {num_draws} a problem needs; draw more"
        )
    keep = torch.as_tensor(np.linspace(0, total - 1, num_draws).round().astype(np.int64))
    sampler = infer.SAMPLERS[kernel]

    def posterior(obs: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        start = infer.map(problem, obs, seed=seed, config=map_config)
        result = sampler(problem, obs, init=start, seed=seed, config=config)
        return {name: result.samples[name].reshape(-1)[keep] for name in problem.prior.aux_names}

    return posterior


def _uniformity_p_value(ranks: np.ndarray, num_draws: int, num_bins: int) -> float:
    """Pearson's chi-square test of ranks in ``0 .. num_draws`` against uniform bins."""
    counts = np.bincount(ranks // ((num_draws + 1) // num_bins), minlength=num_bins)
    return float(chisquare(counts).pvalue)


def sbc_ranks(
    problem: InverseProblem,
    num_problems: int,
    *,
    num_draws: int = 99,
    num_bins: int = 10,
    seed: int = 0,
    posterior: Posterior | None = None,
    progress: bool | None = None,
    cache: ResultCache | None = None,
    shard: tuple[int, int] = (0, 1),
) -> SBCResult:
    """Run SBC of the named variables of ``problem``.

    Collective on the forward model's communicator (every rank runs the same problems).
    Problem ``i`` is simulated with the ``i``-th of :func:`child_seeds` of ``seed``, the
    same whatever ``num_problems`` and ``shard`` are, so shards and an interrupted run
    resumed from ``cache`` give the ranks of one unsharded run.

    Args:
        problem: The inverse problem; data are simulated from ``problem.model``.
        num_problems: Number of simulated problems :math:`N` (at least 2).
        num_draws: Posterior draws per problem :math:`L`.
        num_bins: Histogram bins; ``num_draws + 1`` must be a multiple of it.
        seed: Seed of the simulations and of the posterior routine.
        posterior: The routine under test, ``posterior(obs, seed) -> {name: (L,) draws}``;
            default :func:`laplace_posterior` of ``problem``.
        progress: Show a progress bar (default: on a terminal, rank 0 only; elsewhere, as
            in a log file, rank 0 writes one line per computed problem to stderr).
        cache: Keeps each finished problem's ranks (key ``problem-NNNN``); its settings
            must describe everything the ranks depend on besides the code (the problem,
            the routine, ``num_draws`` and ``seed``).
        shard: ``(k, n)``: only the problems ``k, k + n, ...``, so ``n`` processes can
            share one ``cache``; the result holds this shard's problems.

    Returns:
        The :class:`SBCResult`.

    Raises:
        ValueError: If the problem has no named variables, or the counts or the shard do
            not fit.
    """
    names = tuple(problem.prior.aux_names)
    if not names:
        raise ValueError("the prior has no named variables to calibrate")
    if num_problems < 2 or num_draws < 1 or num_bins < 2 or (num_draws + 1) % num_bins:
        raise ValueError(
            f"need num_problems >= 2, num_draws >= 1 and num_bins >= 2 dividing "
            f"num_draws + 1; got {num_problems}, {num_draws} and {num_bins}"
        )
    k, n = shard
    if n < 1 or not 0 <= k < n or len(range(k, num_problems, n)) < 2:
        raise ValueError(
            f"shard k/n needs 0 <= k < n and at least 2 of the {num_problems} problems, "
            f"got {k}/{n}"
        )
    posterior = posterior or laplace_posterior(problem, num_draws)
    device = problem.check_obs(torch.zeros(problem.n_obs)).device  # the generator's
    if cache is not None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    seeds = child_seeds(seed, num_problems)
    indices = range(k, num_problems, n)
    ranks = np.empty((len(indices), len(names)), dtype=np.int64)
    show = is_root() and (sys.stderr.isatty() if progress is None else progress)
    log = is_root() and progress is None and not show
    for row, i in enumerate(tqdm(indices, desc="SBC", unit="problem", disable=not show)):
        key = f"problem-{i:04d}"
        # rank 0 reads and writes the cache, so every rank skips or runs a problem alike
        ranks_i = on_root(comm, cache.get, key) if cache is not None else None
        if ranks_i is None:
            tic = time.perf_counter()
            ranks_i = _problem_ranks(problem, posterior, seeds[i], names, num_draws, device)
            if cache is not None:
                on_root(comm, cache.put, key, ranks_i)
            if log:
                ranked = ", ".join(f"{name} {r}" for name, r in zip(names, ranks_i, strict=True))
                print(
                    f"SBC {key} ({row + 1}/{len(indices)}): ranks {ranked} of {num_draws} "
                    f"draws, {time.perf_counter() - tic:.0f} s",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
        ranks[row] = ranks_i
    return SBCResult.from_ranks(names, ranks, num_draws, num_bins)


def _problem_ranks(
    problem: InverseProblem,
    posterior: Posterior,
    seed: int,
    names: tuple[str, ...],
    num_draws: int,
    device: torch.device,
) -> list[int]:
    """Simulate one problem from the model with ``seed``; the truths' ranks among its draws."""
    with seeded(seed, device), torch.no_grad():
        trace = poutine.trace(problem.model).get_trace()
    obs = trace.nodes[OBS]["value"].detach()
    draws = posterior(obs, seed)
    ranks = []
    for name in names:
        sample = torch.as_tensor(draws[name]).reshape(-1)
        if sample.numel() != num_draws:
            raise ValueError(
                f"posterior returned {sample.numel()} draws of {name!r}, expected {num_draws}"
            )
        ranks.append(int((sample < trace.nodes[name]["value"]).sum()))
    return ranks


def plot_rank_histograms(result: SBCResult) -> Figure:
    """One rank histogram per named variable, with the uniform expectation and its 99% band.

    The band is the binomial 0.5%-99.5% range of a bin's count under uniform ranks.
    """
    counts = result.histograms()
    n = result.ranks.shape[0]
    p = 1.0 / result.num_bins
    low, high = binom.ppf([0.005, 0.995], n, p)
    fig = Figure(figsize=(3.2 * len(result.names), 2.8), layout="constrained")
    axes = fig.subplots(1, len(result.names), squeeze=False)[0]
    for ax, name, c in zip(axes, result.names, counts, strict=True):
        ax.axhspan(low, high, color="0.85", label="99% band, uniform")
        ax.axhline(n * p, color="0.4", lw=1)
        ax.bar(np.arange(result.num_bins), c, width=0.9, color="C0")
        ax.set_title(f"{name}  (p = {result.p_values[name]:.2g})")
        ax.set_xlabel(f"rank bin ({result.num_draws + 1} ranks)")
    axes[0].set_ylabel("problems")
    axes[0].legend(loc="lower left", fontsize="small")
    return fig
