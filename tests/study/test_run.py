# SPDX-License-Identifier: MIT
"""Running a whole study (:mod:`invprior.study.run`): ``invprior run``, ``report`` and
``compare`` on a tiny study, on one rank and on several.
"""

import dataclasses
import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_study import NAMES, study_toml

from invprior.cli import main
from invprior.study import StudyConfig


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_run_then_report(tiny_prior, tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text(study_toml(tiny_prior, tmp_path / "out"))
    assert main(["run", str(config)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    keys = {"rel_l2_error", "named_abs_error", "coverage_90", "ess_min", "rhat_max"}
    keys |= {"gp_rel_l2_error", "gp_coverage_90"}
    assert keys | {"divergences", "pde_solves", "wall_s"} <= set(metrics)
    assert set(metrics["named_abs_error"]) == set(NAMES)
    assert 0 <= metrics["gp_coverage_90"] <= 1 and metrics["gp_rel_l2_error"] > 0
    out = tmp_path / "out"
    files = {p.name for p in out.iterdir()}
    assert {"posterior.nc", "fields.png", "pair.png", "traces.png", "summary.txt"} <= files
    assert {"fields.xdmf", "fields.h5"} <= files
    assert {"linearised_modes.png", "linearised_std.png", "block_correlation.png"} <= files
    assert 0 <= metrics["block_correlation_max"] <= 1
    names = {a.get("Name") for a in ET.parse(out / "fields.xdmf").getroot().iter("Attribute")}
    assert names == {"truth", "gp_mean", "gp_std", "gp_q05", "gp_q95"} | {
        f"posterior_{k}" for k in ("mean", "std", "q05", "q95")
    }
    assert "seed 11 (the generator's training data)" in (out / "summary.txt").read_text()
    assert main(["report", str(out)]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("rel_l2_error", "gp_rel_l2_error", "gp_coverage_90"):
        assert again[key] == pytest.approx(metrics[key])
    assert main(["report", str(tmp_path)]) == 2


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # ArviZ on draws of zero variance
def test_chains_that_never_move_still_give_a_report(tiny_prior, tmp_path):
    from mpi4py import MPI

    from invprior.diagnostics import SamplingWarning
    from invprior.study import run_study

    # ChEES without warm-up and with a huge step: every proposal diverges, every draw is
    # the chain's start
    config = StudyConfig.from_dict(tomllib.loads(study_toml(tiny_prior, tmp_path / "out")))
    mcmc = dataclasses.replace(
        config.mcmc,
        kernel="chees",
        warmup_steps=0,
        step_size=1e3,
        num_samples=10,
        num_chains=1,
    )
    config = dataclasses.replace(config, mcmc=mcmc)
    with pytest.warns(SamplingWarning, match=r"no block correlation .*constant draws of"):
        metrics = run_study(config, MPI.COMM_WORLD)
    assert metrics["divergences"] == mcmc.num_samples * mcmc.num_chains
    assert "block_correlation_max" not in metrics
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"summary.txt", "linearised_modes.png"} <= files
    assert "block_correlation.png" not in files


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_approximation_error_widens_the_noise_and_the_fields(tiny_prior, tmp_path):
    from mpi4py import MPI

    import xarray as xr

    from invprior.likelihood import CorrelatedGaussianLikelihood
    from invprior.study import build_study, run_study

    text = study_toml(tiny_prior, tmp_path / "out")
    text += "[approximation_error]\nenabled = true\nnum_fields = 50\n"
    config = StudyConfig.from_dict(tomllib.loads(text))
    setup = build_study(config, MPI.COMM_WORLD)
    lik = setup.problem.likelihood
    assert isinstance(lik, CorrelatedGaussianLikelihood)
    assert setup.measured.likelihood is not lik
    # the enhanced covariance is the measurement noise plus a positive semi-definite term
    extra = lik.cov - setup.noise_std**2 * torch.eye(len(setup.obs), dtype=lik.cov.dtype)
    assert torch.linalg.eigvalsh(extra).min() > -1e-10 and extra.diagonal().min() > 0
    metrics = run_study(config, MPI.COMM_WORLD)
    assert metrics["approximation_error"] is True
    ratio = (extra.diagonal().sqrt() / setup.noise_std).numpy()
    assert metrics["approximation_error_over_noise"] == {
        "median": pytest.approx(float(np.median(ratio))),
        "share_below_1": pytest.approx(float((ratio < 1).mean())),
    }
    tree = xr.open_datatree(tmp_path / "out" / "posterior.nc")
    assert "approximation error" in tree["posterior"].attrs["field"]
    with pytest.raises(ValueError, match="seed equals"):
        StudyConfig.from_dict({"approximation_error": {"enabled": True, "seed": 777}})


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_study_agrees_on_one_and_all_ranks(tiny_prior, comm, tmp_path_factory):
    """Under mpiexec: the same study on COMM_SELF and on all ranks gives the same metrics."""
    from mpi4py import MPI

    from invprior.study import run_study

    if comm.size == 1:
        pytest.skip("compares one rank with several; run under mpiexec -n 2")
    shared = comm.bcast(str(tmp_path_factory.mktemp("mpi")) if comm.rank == 0 else None)
    text = study_toml(tiny_prior, Path(shared) / "out")
    config = StudyConfig.from_dict(
        tomllib.loads(text.replace("num_fields = 200", "num_fields = 50"))
    )
    serial = run_study(config, MPI.COMM_SELF, write=False)
    parallel = run_study(config, comm)
    for key in ("rel_l2_error", "coverage_90", "gp_rel_l2_error", "gp_coverage_90", "rhat_max"):
        assert parallel[key] == pytest.approx(serial[key], rel=1e-6), key
        assert comm.bcast(parallel[key], root=0) == parallel[key]  # replicated
    assert (parallel["divergences"], parallel["pde_solves"]) == (
        serial["divergences"],
        serial["pde_solves"],
    )
    comm.Barrier()
    files = {p.name for p in (Path(shared) / "out").iterdir()}
    assert {"posterior.nc", "summary.txt", "fields.xdmf", "fields.h5"} <= files


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_compare_runs_studies_on_the_same_data(tiny_prior, tiny_flow, tmp_path, capsys):
    a, b, c = tmp_path / "aux.toml", tmp_path / "flow.toml", tmp_path / "noisy.toml"
    a.write_text(study_toml(tiny_prior))
    b.write_text(study_toml(tiny_flow, baseline=False))
    c.write_text(study_toml(tiny_prior).replace("relative = 0.05", "relative = 0.1"))
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(results) == {"aux", "flow"} and "gp_rel_l2_error" not in results["flow"]
    table = (out / "comparison.md").read_text()
    assert "| metric | aux | flow |" in table and "| gp_rel_l2_error |" in table
    assert (out / "aux" / "posterior.nc").is_file() and (out / "flow" / "posterior.nc").is_file()
    assert json.loads((out / "comparison.json").read_text()) == results
    assert main(["compare", str(a), str(c), "--out", str(out)]) == 2
    assert "[noise] of noisy differs from aux's" in capsys.readouterr().err
    assert main(["compare", str(a), "--out", str(out)]) == 2


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_data_study_same_chains_on_one_and_all_ranks(tiny_prior, comm, tmp_path_factory):
    """A [data] + [pde] form study: the chains on COMM_SELF and on all ranks agree."""
    from mpi4py import MPI

    import xarray as xr
    from user_problem import data_toml, write_user_problem

    from invprior.study import OutputConfig, run_study

    shared = Path(comm.bcast(str(tmp_path_factory.mktemp("data")) if comm.rank == 0 else None))
    if comm.rank == 0:
        write_user_problem(shared, tiny_prior, MPI.COMM_SELF)
        (shared / "study.toml").write_text(data_toml(tiny_prior, "all"))
    comm.Barrier()
    config = StudyConfig.from_toml(shared / "study.toml")
    serial = dataclasses.replace(config, output=OutputConfig(shared / f"self-{comm.rank}"))
    one = run_study(serial, MPI.COMM_SELF)
    every = run_study(config, comm)
    assert every["pde_solves"] == one["pde_solves"] > 0
    comm.Barrier()
    a = xr.open_datatree(shared / f"self-{comm.rank}" / "posterior.nc")["posterior"]
    b = xr.open_datatree(shared / "all" / "posterior.nc")["posterior"]
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        scale = max(float(abs(a[name]).max()), 1e-300)
        np.testing.assert_allclose(b[name].values, a[name].values, atol=1e-8 * scale, err_msg=name)
