# SPDX-License-Identifier: MIT
"""Building a study (:mod:`invprior.study.setup`): generator, mesh, PDE, data and noise."""

import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_study import study_toml

from invprior.cli import main
from invprior.priors import DLCFMGenerator, load
from invprior.study import StudyConfig


@pytest.mark.dolfinx
def test_dlcfm_prior_settings(tiny_prior, tiny_flow, tmp_path):
    from mpi4py import MPI

    from invprior.sites import EPS
    from invprior.study import build_study, run_study

    def config(checkpoint, **tables):
        d = tomllib.loads(study_toml(checkpoint, tmp_path / "o"))
        for table, values in tables.items():
            d.setdefault(table, {}).update(values)
        return StudyConfig.from_dict(d)

    approx = {"enabled": True, "num_fields": 20}
    fixed = config(
        tiny_flow, approximation_error=approx, prior={"fixed_eps": True, "flow_steps": 1}
    )
    fixed = build_study(fixed, MPI.COMM_WORLD)
    assert (
        fixed.problem.prior.generator.steps == 1 and EPS not in fixed.problem.prior.latent_shapes
    )
    # the study decodes with one flow step, as a generator built with steps = 1 does
    checkpoint = load(tiny_flow)
    one_step = DLCFMGenerator.from_config({**checkpoint.config(), "steps": 1})
    one_step.load_state_dict(checkpoint.state_dict())
    z_aux, z_rec = torch.randn(3, checkpoint.aux_dim), torch.randn(3, checkpoint.rec_dim)
    eps = torch.randn(3, *checkpoint.eps_shape)
    field = fixed.problem.prior.generator.decode(z_aux, z_rec, eps)
    assert torch.equal(field, one_step.decode(z_aux, z_rec, eps))
    assert not torch.equal(field, checkpoint.decode(z_aux, z_rec, eps))
    with pytest.raises(ValueError, match="already models the residual"):
        build_study(config(tiny_flow, approximation_error=approx), MPI.COMM_WORLD)
    with pytest.raises(ValueError, match="DL-CFM generators only"):
        build_study(config(tiny_prior, prior={"fixed_eps": True}), MPI.COMM_WORLD)
    with pytest.raises(ValueError, match="flow_steps"):
        StudyConfig.from_dict({"prior": {"flow_steps": 0}})
    metrics = run_study(config(tiny_flow, baseline={"enabled": False}), MPI.COMM_WORLD)
    assert np.isfinite(metrics["rel_l2_error"]) and metrics["pde_solves"] > 0


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_solver_choices_give_the_same_data(tiny_prior):
    from mpi4py import MPI

    from invprior.bridge import DenseObservationMap
    from invprior.study import build_study

    data = {}
    for solver, dense in (("direct", True), ("direct", False), ("iterative", False)):
        text = (
            study_toml(tiny_prior) + f'[pde]\nsolver = "{solver}"\ndense = {str(dense).lower()}\n'
        )
        setup = build_study(StudyConfig.from_dict(tomllib.loads(text)), MPI.COMM_WORLD)
        assert isinstance(setup.forward, DenseObservationMap) is dense
        data[solver, dense] = setup.data.numpy()
    scale = np.abs(data["direct", False]).max()
    np.testing.assert_allclose(data["direct", True], data["direct", False], atol=1e-10 * scale)
    np.testing.assert_allclose(data["iterative", False], data["direct", False], atol=1e-6 * scale)


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_own_data_and_physics_with_unknown_noise(tiny_prior, tmp_path, capsys, monkeypatch):
    """[data] from a CSV (a simulated truth's data), [pde] form, [noise] prior, end to end."""
    from mpi4py import MPI

    import xarray as xr
    from user_problem import data_toml, write_user_problem

    from invprior.sites import NOISE_STD
    from invprior.study import build_study

    case = tmp_path / "case"
    case.mkdir()
    truth = write_user_problem(case, tiny_prior, MPI.COMM_WORLD)
    assert type(truth.model).__name__ == "AffineVariationalProblem" and truth.linear
    (case / "study.toml").write_text(data_toml(tiny_prior, tmp_path / "out"))
    # the data study reads back the truth study's sensors and data, on the same physics
    config = StudyConfig.from_toml(case / "study.toml")
    assert config.truth is None and config.data.file == str(case / "data.csv")
    setup = build_study(config, MPI.COMM_WORLD)
    assert setup.truth is None and setup.noise_std == 0.02
    np.testing.assert_array_equal(setup.data.numpy(), truth.data.numpy())
    np.testing.assert_array_equal(setup.model.sensors.points, truth.model.sensors.points)
    probe = torch.full((16, 16), 0.3, dtype=torch.float64)
    np.testing.assert_allclose(setup.forward(probe), truth.forward(probe), rtol=1e-12)
    # through the command, from another working directory: paths resolve against the TOML
    (case / "study.toml").write_text(
        data_toml(tiny_prior, tmp_path / "out", noise='prior = "halfnormal"\nscale = 0.05')
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "case/study.toml"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not {"rel_l2_error", "coverage_90", "named_abs_error", "gp_rel_l2_error"} & set(metrics)
    assert metrics["noise_std"] is None and metrics["pde_solves"] > 0
    posterior = metrics["noise_std_posterior"]
    assert 0 < posterior["hdi90_lb"] <= posterior["mean"] <= posterior["hdi90_ub"]
    assert 0 <= metrics["ppc_coverage_90"] <= 1
    assert set(metrics["ppc_p_values"]) == {"mean", "std", "min", "max"}
    out = tmp_path / "out"
    tree = xr.open_datatree(out / "posterior.nc")
    assert tree["posterior"][NOISE_STD].shape == (2, 6)
    assert not [v for v in tree["constant_data"].data_vars if v.startswith("true_")]
    # the report's numbers are those of the posterior: the predictive band's coverage
    obs = tree["observed_data"]["obs"].values
    rep = tree["posterior_predictive"]["obs"].values.reshape(-1, obs.size)
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    assert metrics["ppc_coverage_90"] == float(((lo <= obs) & (obs <= hi)).mean())
    assert metrics["ppc_p_values"]["max"] == float((rep.max(1) >= obs.max()).mean())
    assert posterior["mean"] == pytest.approx(float(tree["posterior"][NOISE_STD].mean()))
    summary = (out / "summary.txt").read_text()
    assert "Noise std (unknown, sampled" in summary and "No truth: measured data" in summary
    files = {p.name for p in out.iterdir()}
    assert {"posterior.nc", "fields.png", "pair.png", "traces.png", "fields.xdmf"} <= files
    names = {a.get("Name") for a in ET.parse(out / "fields.xdmf").getroot().iter("Attribute")}
    assert names == {f"posterior_{k}" for k in ("mean", "std", "q05", "q95")}
    assert main(["report", str(out)]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["ppc_p_values"] == metrics["ppc_p_values"]


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_noise_std_per_observation(tiny_prior, tmp_path, capsys):
    """A [noise] std list (one per sensor) and a std column set the likelihood's std."""
    from mpi4py import MPI

    from user_problem import data_toml, write_user_problem

    from invprior.study import build_study

    stds = [0.01 * (k + 1) for k in range(9)]
    text = study_toml(tiny_prior, tmp_path / "out", baseline=False)
    text = text.replace("relative = 0.05", f"std = {stds}")
    setup = build_study(StudyConfig.from_dict(tomllib.loads(text)), MPI.COMM_WORLD)
    np.testing.assert_array_equal(setup.measured.likelihood.noise_std.numpy(), stds)
    # the data are the clean observations plus the per-sensor std times the seeded draw
    clean = setup.forward(torch.as_tensor(setup.truth["field"])).numpy()
    draw = np.random.default_rng(0).standard_normal(9)
    np.testing.assert_array_equal(setup.data.numpy(), clean + np.asarray(stds) * draw)
    config = tmp_path / "study.toml"
    config.write_text(text)
    assert main(["run", str(config)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["noise_std"] == stds and "rel_l2_error" in metrics
    case = tmp_path / "case"
    case.mkdir()
    write_user_problem(case, tiny_prior, MPI.COMM_WORLD, std_column=True)
    config = StudyConfig.from_dict(tomllib.loads(data_toml(tiny_prior, noise="")), base=case)
    setup = build_study(config, MPI.COMM_WORLD)
    np.testing.assert_array_equal(setup.measured.likelihood.noise_std.numpy(), [0.02] * 9)


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_worked_example_passes_the_checks():
    from mpi4py import MPI

    from invprior.study.setup import check_study

    example = Path(__file__).resolve().parents[2] / "examples" / "own_problem"
    check_study(StudyConfig.from_toml(example / "study.toml"), MPI.COMM_WORLD)


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_l_shaped_mesh_file_end_to_end(tiny_prior, tmp_path, capsys, monkeypatch):
    """[mesh] file: an L-shaped XDMF mesh whose facet tags carry the boundary data."""
    from mpi4py import MPI

    import dolfinx.fem
    import ufl
    from user_problem import L_BOUNDARY, PHYSICS, l_mesh, write_mesh

    from invprior.pde import VariationalProblem
    from invprior.study import build_study

    case = tmp_path / "case"
    case.mkdir()
    (case / "physics.py").write_text(PHYSICS)
    mesh, tags = l_mesh(MPI.COMM_SELF)
    write_mesh(case / "l.xdmf", mesh, tags)
    points = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.5, 0.4], [0.9, 0.1]])
    namespace = {}
    exec(PHYSICS, namespace)  # the oracle: the same physics on the mesh built here
    oracle = VariationalProblem(
        mesh, namespace["residual"], points, (16, 16), ((0.0, 0.0), (1.0, 1.0)),
        dirichlet=[(1, 0.0)], robin=[(5, 5.0, 0.0)], facet_tags=tags,
    )  # fmt: skip
    probe = np.full((16, 16), 0.3)
    values = oracle.forward(probe)
    rows = "".join(
        f"{x!r},{y!r},{v!r}\n" for (x, y), v in zip(points.tolist(), values.tolist(), strict=True)
    )
    (case / "data.csv").write_text("x,y,value\n" + rows)
    (case / "study.toml").write_text(
        study_toml(tiny_prior, baseline=False).replace("[mesh]\nn = 8\n", "")
        .replace("[sensors]\nper_side = 3\n", "").replace("[noise]\nrelative = 0.05\n", "")
        .replace('[truth]\nsimulator = "source"\nseed = 5\n', "")
        + '[mesh]\nfile = "l.xdmf"\n[data]\nfile = "data.csv"\n[noise]\nstd = 0.02\n'
        + '[pde]\nform = "physics.py:residual"\n' + L_BOUNDARY
    )  # fmt: skip
    setup = build_study(StudyConfig.from_toml(case / "study.toml"), MPI.COMM_WORLD)
    area = dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ufl.dx(setup.model.V.mesh)))
    assert area == pytest.approx(0.75, rel=1e-12)
    field = torch.full((16, 16), 0.3, dtype=torch.float64)
    np.testing.assert_allclose(setup.forward(field).numpy(), values, rtol=1e-10)
    assert values.min() > 0 and values[0] < values[3]  # u = 0 upwind at x = 0
    # through the command, from another folder; --out is relative to the working directory
    monkeypatch.chdir(tmp_path)
    assert main(["run", "case/study.toml", "--out", "l-out"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["noise_std"] == 0.02 and metrics["pde_solves"] > 0
    assert metrics["folder"] == "l-out" and (tmp_path / "l-out" / "posterior.nc").is_file()
    xdmf = ET.parse(tmp_path / "l-out" / "fields.xdmf").getroot()
    cells = next(xdmf.iter("Topology")).get("NumberOfElements")
    assert int(cells) == mesh.topology.index_map(2).size_local  # the L, not the square
