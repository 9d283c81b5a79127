# SPDX-License-Identifier: MIT
"""Running a whole study: inference, the baseline, the DataTree and the report."""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

from .. import infer, linearised
from ..block_correlation import BlockCorrelation, block_correlation, plot_block_correlation
from ..collective import on_root, staged_folder
from ..datatree import save_datatree, to_arviz
from ..diagnostics import SamplingWarning
from ..fileio import check_output_folder, save_figure
from ..parallel import gather_chains, split_chains
from ..report import BASELINE, field_maps, study_metrics, write_report
from ..sites import FIELD
from .baseline import baseline_seed, gp_baseline
from .config import StudyConfig
from .setup import build_study

__all__ = ["OUTPUT_SOURCE", "posterior_tree", "run_study"]

OUTPUT_SOURCE = "[output] folder or --out"
"""Where the user gives the output folder, as named in error messages."""

MARKER = "posterior.nc"
"""A file every written study holds: an existing folder without it is not replaced."""


def posterior_tree(
    result: infer.MCMCResult,
    problem: object,
    obs: object,
    *,
    truth: dict[str, np.ndarray] | None,
    seed: int,
    approximation: tuple[object, object, object] | None = None,
    sensor_coords: np.ndarray | None = None,
) -> object:
    """The DataTree of a study's posterior draws, with the field of every draw.

    With ``approximation = (approx, forward, noise_std)`` (the study's
    :class:`invprior.approximation_error.ApproximationError`), each draw's field is the
    generator's field plus a conditional draw of the generator's error
    (:meth:`~invprior.approximation_error.ApproximationError.posterior_fields`, seeded by
    ``seed``): the field uncertainty the enhanced noise model stands for.

    Args:
        result: The sampler's result.
        problem: The inverse problem sampled.
        obs: The data, on the generator's dtype and device.
        truth: The synthetic truth, or None for measured data.
        seed: Seed of the predictive replicates and the error draws.
        approximation: See above; None keeps the generator's fields.
        sensor_coords: Sensor coordinates for the observed-data group.
    """
    tree = to_arviz(
        result,
        problem,
        obs,
        sensor_coords=sensor_coords,
        include_field=True,
        truth=truth,
        seed=seed,
    )
    if approximation is not None:
        approx, forward, std = approximation
        fields = approx.posterior_fields(result.samples[FIELD], obs, forward, std, seed)
        tree["posterior"][FIELD] = tree["posterior"][FIELD].copy(data=fields.cpu().numpy())
        tree["posterior"].attrs["field"] = (
            "generator field plus a conditional draw of its approximation error"
        )
    return tree


def run_study(
    config: StudyConfig,
    comm: object,
    *,
    write: bool = True,
    checkpoint: infer.checkpoint.SamplingCheckpoint | None = None,
) -> dict[str, object]:
    """Run a study: truth or measured data, MAP, MCMC, the baseline, DataTree and report.

    Collective on ``comm``. With ``config.study.parallel_chains`` off, the mesh is distributed
    over all ranks of ``comm`` and the chains run one after another. With it on, ``comm``
    is split into rank groups (:func:`invprior.parallel.split_chains`), each with its own
    mesh; every group computes the MAP, rank 0's MAP is broadcast as the chains' start,
    each group runs its chains (with ``[mcmc] kernel = "chees"``, whose chains adapt
    together, every group runs all of them), and the chains are gathered on every rank; the rest
    (predictive checks, baseline) is repeated on every group, so every rank returns the
    same metrics. When ``write`` is set, rank 0 writes ``posterior.nc`` (with the baseline
    as the group ``baseline``), the report and the linearised-prior figures
    (:mod:`invprior.linearised`, at the MAP), and the ranks of the mesh that holds rank 0
    write ``fields.xdmf`` (+ ``fields.h5``): the posterior mean, std, 5%/95% quantiles,
    the truth and the baseline's summaries as P1 functions for ParaView.

    The output folder ``config.output.folder`` is written as one unit: it is checked first,
    before the mesh (:func:`invprior.fileio.check_output_folder`: not a file, writable,
    and new, empty or holding an earlier study's ``posterior.nc``), and the results are
    written into a hidden partial sibling that replaces the folder only once complete
    (:func:`invprior.collective.staged_folder`). So an interrupted or failed run leaves
    the previous folder as it was and no partial files, and a rerun leaves no file of the
    previous run behind. Errors of one rank are raised on every rank.

    Args:
        config: The study.
        comm: MPI communicator of all ranks (of the PDE, unless the chains run on groups).
        write: Write the DataTree, the report and the XDMF fields.
        checkpoint: Save the sampling as it goes, or resume it
            (:class:`invprior.infer.checkpoint.SamplingCheckpoint`); with chains on rank
            groups each group's root writes its own chains.

    A study on measured data (``[data]``) has no truth: its metrics hold no error
    scores, and its baseline runs only with ``[baseline] simulator``
    (:attr:`StudyConfig.baseline_simulator`).

    Returns:
        The metrics of :func:`invprior.report.study_metrics` (with ``gp_rel_l2_error`` and
        ``gp_coverage_90`` when the baseline runs against a truth), plus ``wall_s`` and
        ``pde_solves`` of the whole study (truth, MAP, sampling, predictive checks,
        baseline; solves summed over the rank groups; ``sampling_*`` are the sampling's
        alone), ``map_energy``, ``noise_std`` (the known std, a number or one per
        observation; the std the synthetic data were drawn with under ``[noise] prior``;
        null for measured data under ``[noise] prior``, whose posterior is
        ``noise_std_posterior``), ``approximation_error`` (whether it was used),
        ``block_correlation_max`` (largest posterior correlation between a named and a
        residual coordinate; left out, with a warning, when the draws are constant) and,
        when written, ``folder``.

    Raises:
        InputError: With ``write``, if the output folder cannot be written or replaced
            (on every rank, before any work).
        ValueError: With ``config.study.parallel_chains``, if the ranks cannot be split into
            groups (see :func:`invprior.parallel.chain_group`).
    """
    from ..pde import write_grid_functions

    tic = time.perf_counter()
    folder = config.output.folder
    if write:  # before any work: a bad folder must not cost the whole run
        on_root(comm, check_output_folder, folder, OUTPUT_SOURCE, MARKER)
    mesh_comm, chains = comm, None  # chains None: all of them, on this one mesh
    if config.study.parallel_chains:
        mesh_comm, chains = split_chains(comm, config.mcmc.num_chains)
    batched = config.mcmc.kernel == "chees"  # adapted together: every group runs all chains
    setup = build_study(config, mesh_comm)
    model, forward, truth, std = setup.model, setup.forward, setup.truth, setup.noise_std
    problem, obs, approx = setup.problem, setup.obs, setup.approximation_error
    start = infer.map(problem, obs, seed=config.study.seed, config=config.map)
    if chains is not None:
        start = comm.bcast(start, root=0)  # one start for all groups, as in one run
    sampler = infer.SAMPLERS[config.mcmc.kernel]
    if checkpoint is not None and chains is not None:
        checkpoint = dataclasses.replace(checkpoint, write=mesh_comm.rank == 0)
    result = sampler(
        problem,
        obs,
        init=start,
        seed=config.study.seed,
        config=config.mcmc,
        chains=None if batched else chains,
        checkpoint=checkpoint,
    )
    if chains is not None and not batched:
        result = gather_chains(result, comm, mesh_comm)
    tree = posterior_tree(
        result,
        problem,
        obs,
        truth=truth,
        seed=config.study.seed,
        approximation=(approx, forward, std) if approx else None,
        sensor_coords=model.sensors.points[:, :2],
    )
    if config.baseline_simulator is not None:
        seed, seed_source = baseline_seed(
            problem.prior.generator, config.baseline_simulator, config.baseline.seed
        )
        baseline = gp_baseline(
            setup.measured,
            setup.data,
            config.baseline_simulator,
            dataclasses.replace(config.baseline, seed=seed),
            map_config=config.map,
            seed=config.study.seed,
            linear=setup.linear,
        )
        baseline.attrs["seed_source"] = seed_source
        tree[BASELINE] = baseline
    metrics = study_metrics(tree)
    correlation = _block_correlation(tree) if problem.prior.aux_names else None
    if correlation is not None:
        metrics["block_correlation_max"] = correlation.max_abs
    if approx and std is not None:  # the generator's error next to the measurement noise
        ratio = approx.std_over_noise(std).numpy()
        metrics["approximation_error_over_noise"] = {
            "median": float(np.median(ratio)),
            "share_below_1": float((ratio < 1).mean()),
        }
    metrics.update(
        map_energy=start.potential_energy,
        noise_std=std.tolist() if isinstance(std, np.ndarray) else std,
        approximation_error=approx is not None,
        # each rank counts its mesh's solves: sum over ranks / ranks per mesh = sum over
        # meshes, or over one mesh where every group ran the same chains
        pde_solves=comm.allreduce(model.counter.total)
        // (comm.size if batched else mesh_comm.size),
    )
    if write:
        maps = field_maps(tree)
        with staged_folder(comm, folder) as out:  # all of it, or the previous folder
            if mesh_comm.allreduce(int(comm.rank == 0)):  # the mesh that holds rank 0
                write_grid_functions(model.Q, model.transfer, maps, out / "fields.xdmf")
            if comm.rank == 0:
                save_datatree(tree, out / MARKER)
                write_report(tree, out)
                if problem.prior.aux_names:  # the linearised prior at the MAP
                    induced = linearised.induced_covariance(problem.prior, start.sites)
                    linearised.write_figures(out, induced)
                if correlation is not None:  # the posterior's block structure
                    save_figure(plot_block_correlation(correlation), out / "block_correlation.png")
        metrics["folder"] = str(folder)
    metrics["wall_s"] = time.perf_counter() - tic
    return metrics


def _block_correlation(tree: object) -> BlockCorrelation | None:
    """The posterior's named/residual cross-correlation, or None with a warning.

    Chains that never moved (every proposal rejected) leave constant draws, whose
    correlation is undefined; the study still reports everything else.
    """
    try:
        return block_correlation(tree)
    except ValueError as err:
        warnings.warn(
            f"no block correlation of the posterior draws ({err}); the chains did not "
            "explore the posterior, see the sampling checks",
            SamplingWarning,
            stacklevel=3,
        )
        return None
