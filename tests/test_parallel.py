# SPDX-License-Identifier: MIT
"""MCMC chains across MPI rank groups: the split rule, merging, and equality with one run."""

import dataclasses
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from linear_gaussian import make_problem, synthetic_obs
from tiny_study import study_toml, tiny_auxvae

from invprior import infer
from invprior.parallel import chain_group, gather_chains, merge_chains, split_chains

TINY = {
    "num_samples": 8,
    "warmup_steps": 10,
    "num_chains": 3,
    "max_tree_depth": 3,
    "disable_progbar": True,
}


def _assert_same_chains(a: infer.MCMCResult, b: infer.MCMCResult) -> None:
    """Bit-identical draws, statistics and per-chain counts (wall times aside)."""
    torch.testing.assert_close(a.latent, b.latent, rtol=0, atol=0)
    assert a.samples.keys() == b.samples.keys()
    for name in a.samples:
        torch.testing.assert_close(a.samples[name], b.samples[name], rtol=0, atol=0)
    assert a.sample_stats.keys() == b.sample_stats.keys()
    for key in a.sample_stats:
        np.testing.assert_array_equal(a.sample_stats[key], b.sample_stats[key])
    for sa, sb in zip(a.chain_stats, b.chain_stats, strict=True):
        assert {**sa, "wall_s": 0} == {**sb, "wall_s": 0}


@pytest.mark.parametrize("size", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("num_chains", [1, 2, 3, 4, 5, 8])
def test_chain_groups_are_rank_blocks_that_run_every_chain_once(size, num_chains):
    groups = min(size, num_chains)
    if size % groups:
        with pytest.raises(ValueError, match=f"{size} MPI ranks cannot be split"):
            chain_group(0, size, num_chains)
        return
    assigned = [chain_group(rank, size, num_chains) for rank in range(size)]
    assert [g for g, _ in assigned] == [rank // (size // groups) for rank in range(size)]
    per_group = dict(assigned)
    assert sorted(c for chains in per_group.values() for c in chains) == list(range(num_chains))
    assert all(c % groups == g for g, chains in per_group.items() for c in chains)


def test_chain_group_errors_say_how_to_fix():
    with pytest.raises(ValueError, match=r"4 MPI ranks .* 3 equal groups.*multiple of 3 ranks"):
        chain_group(0, 4, 3)
    with pytest.raises(ValueError, match="num_chains >= 4"):
        chain_group(0, 4, 3)
    with pytest.raises(ValueError, match="rank=2, size=2"):
        chain_group(2, 2, 2)


def test_any_subset_of_chains_is_that_part_of_the_full_run():
    problem = make_problem(aux_dim=1, rec_dim=1)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    full = infer.nuts(problem, obs, init=start, seed=3, **TINY)
    parts = [
        infer.nuts(problem, obs, init=start, seed=3, chains=c, **TINY) for c in [(2,), (1, 0)]
    ]
    assert [s["chain"] for s in parts[1].chain_stats] == [1, 0]
    torch.testing.assert_close(parts[1].latent, full.latent[[1, 0]], rtol=0, atol=0)
    _assert_same_chains(merge_chains(parts), full)
    with pytest.raises(ValueError, match=r"expected each of 0\.\.2 once"):
        merge_chains(parts[1:])
    with pytest.raises(ValueError, match=r"distinct indices in range\(3\)"):
        infer.nuts(problem, obs, init=start, seed=3, chains=(0, 3), **TINY)


@pytest.mark.mpi
def test_gathered_chains_of_rank_groups_equal_one_run(comm):
    """On any number of ranks: split, run each group's chains, gather: the full run."""
    problem = make_problem(aux_dim=1, rec_dim=1)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    settings = {**TINY, "num_chains": 2}
    full = infer.nuts(problem, obs, init=start, seed=3, **settings)
    group_comm, chains = split_chains(comm, 2)
    part = infer.nuts(problem, obs, init=start, seed=3, chains=chains, **settings)
    _assert_same_chains(gather_chains(part, comm, group_comm), full)
    group_comm.Free()


@pytest.fixture
def small_prior(tmp_path_factory, comm):
    """A small untrained Aux-VAE checkpoint on a 16 x 16 grid, shared by all ranks."""
    from invprior.priors import save

    path = None
    if comm.rank == 0:
        torch.manual_seed(0)
        path = save(tiny_auxvae(), tmp_path_factory.mktemp("prior") / "tiny").with_suffix("")
    return comm.bcast(path, root=0)


@pytest.mark.dolfinx
@pytest.mark.mpi
@pytest.mark.parametrize("kernel", ["nuts", "chees"])
def test_study_on_rank_groups_equals_the_one_rank_study(
    small_prior, comm, tmp_path_factory, kernel
):
    """Under mpiexec: the chains on rank groups are those of the sequential 1-rank run.

    NUTS splits its chains over the groups; ChEES runs all of them on every group.
    """
    from mpi4py import MPI

    from invprior.study import OutputConfig, StudyConfig, run_study

    if comm.size == 1:
        pytest.skip("compares rank groups with one rank; run under mpiexec -n 2")
    shared = Path(comm.bcast(str(tmp_path_factory.mktemp(kernel)) if comm.rank == 0 else None))
    config = StudyConfig.from_dict(tomllib.loads(study_toml(small_prior, n=6, baseline=False)))
    if kernel == "chees":
        mcmc = dataclasses.replace(
            config.mcmc, kernel=kernel, num_chains=4, warmup_steps=30, num_samples=10
        )
        config = dataclasses.replace(config, mcmc=mcmc)
    serial_folder = shared / f"serial-{comm.rank}"
    serial_config = dataclasses.replace(config, output=OutputConfig(serial_folder))
    serial = run_study(serial_config, MPI.COMM_SELF)
    study = dataclasses.replace(config.study, parallel_chains=True)
    config = dataclasses.replace(config, output=OutputConfig(shared / "groups"), study=study)
    groups = run_study(config, comm)
    comm.Barrier()
    for key in ("rel_l2_error", "coverage_90", "ess_min", "rhat_max", "divergences"):
        assert groups[key] == pytest.approx(serial[key], rel=1e-8), key
    folders = (serial_folder, config.output.folder)
    trees = [xr.open_datatree(f / "posterior.nc").load() for f in folders]
    for group in ("posterior", "sample_stats", "posterior_predictive"):
        xr.testing.assert_allclose(trees[0][group].ds, trees[1][group].ds, rtol=1e-8, atol=1e-12)
    solves = [[c["pde_solves"] for c in json.loads(t.attrs["chain_stats"])] for t in trees]
    assert solves[0] == solves[1]
    assert (config.output.folder / "fields.xdmf").exists()


@pytest.mark.skip_in_parallel
def test_run_command_sets_chains_and_rank_groups(tmp_path, monkeypatch, capsys):
    import invprior.study
    from invprior.cli import main

    seen = []

    def fake_run_study(config: object, comm: object, **options: object) -> dict:
        seen.append(config)
        config.output.folder.mkdir(parents=True)
        (config.output.folder / "summary.txt").write_text("")
        return {}

    monkeypatch.setattr(invprior.study, "run_study", fake_run_study)
    monkeypatch.setattr(invprior.study.setup, "check_study", lambda config, comm: None)
    path = tmp_path / "study.toml"
    text = study_toml("unused", n=6, baseline=False)
    path.write_text(text.replace("[study]\n", "[study]\nparallel_chains = true\n"))
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--chains", "3"]) == 0
    assert (seen[-1].mcmc.num_chains, seen[-1].study.parallel_chains) == (3, True)
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--no-parallel-chains"]) == 0
    assert (seen[-1].mcmc.num_chains, seen[-1].study.parallel_chains) == (2, False)
    assert main(["run", str(path), "--chains", "0"]) == 2
    assert "num_chains must be >= 1, got 0" in capsys.readouterr().err
    path.write_text(text.replace("[study]\n", '[study]\nparallel_chains = "groups"\n'))
    assert main(["run", str(path)]) == 2
    assert "parallel_chains must be true or false (no quotes), got 'groups'" in (
        capsys.readouterr().err
    )
