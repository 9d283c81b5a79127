# SPDX-License-Identifier: MIT
"""The ``invprior run`` and ``invprior report`` commands on a tiny study."""

import dataclasses
import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_study import NAMES, study_toml, tiny_auxvae

from invprior.cli import main
from invprior.priors import DLCFMGenerator, load
from invprior.study import StudyConfig


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown keys \['n_sensors'\] in \[sensors\]"):
        StudyConfig.from_dict({"sensors": {"n_sensors": 3}})
    with pytest.raises(ValueError, match="unknown tables"):
        StudyConfig.from_dict({"inference": {}})
    with pytest.raises(ValueError, match="kernel must be"):
        StudyConfig.from_dict({"mcmc": {"kernel": "mala"}})
    assert StudyConfig.from_dict({"mcmc": {"num_samples": 5}}).mcmc.num_samples == 5
    with pytest.raises(ValueError, match=r"\[mcmc\] num_samples must be >= 4"):
        StudyConfig.from_dict({"mcmc": {"num_samples": 3}})
    with pytest.raises(ValueError, match=r"\[baseline\] num_fields must be >= 2"):
        StudyConfig.from_dict({"baseline": {"num_fields": 1}})
    assert StudyConfig.from_dict({"baseline": {"enabled": False}}).baseline.num_fields == 2000
    assert StudyConfig.from_dict({}).pde.use_dense
    assert not StudyConfig.from_dict({"pde": {"kind": "conductivity"}}).pde.use_dense
    assert not StudyConfig.from_dict({"pde": {"dense": False}}).pde.use_dense
    with pytest.raises(ValueError, match=r"\[pde\] solver must be"):
        StudyConfig.from_dict({"pde": {"solver": "cg"}})
    with pytest.raises(ValueError, match="dense = true needs kind = 'source'"):
        StudyConfig.from_dict({"pde": {"kind": "conductivity", "dense": True}})


def test_bad_config_file_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[mesh]\nn = 1\n")
    assert main(["run", str(path)]) == 2
    assert "n must be >= 2" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    """A small untrained Aux-VAE checkpoint on a 16 x 16 grid (path without suffix)."""
    from invprior.priors import save

    torch.manual_seed(0)
    gen = tiny_auxvae()
    recipe = {"data": {"simulator": "source", "n": 100, "seed": 11}}  # the baseline's seed
    return save(gen, tmp_path_factory.mktemp("prior") / "tiny", recipe).with_suffix("")


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
    tree = xr.open_datatree(tmp_path / "out" / "posterior.nc")
    assert "approximation error" in tree["posterior"].attrs["field"]
    with pytest.raises(ValueError, match="seed equals"):
        StudyConfig.from_dict({"approximation_error": {"enabled": True, "seed": 777}})


@pytest.fixture(scope="module")
def tiny_flow(tmp_path_factory):
    """A small untrained DL-CFM checkpoint over the tiny Aux-VAE (path without suffix)."""
    from invprior.priors import DLCFMGenerator, save

    torch.manual_seed(0)
    gen = DLCFMGenerator(tiny_auxvae(), channels=2, embed=4, residual_scale=0.01, steps=2)
    recipe = {"data": {"simulator": "source", "n": 100, "seed": 11}}
    return save(gen, tmp_path_factory.mktemp("flow") / "tiny-flow", recipe).with_suffix("")


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
def test_gp_baseline_is_the_closed_form_posterior():
    """Source problem: the baseline equals the Gaussian posterior from the dense map F."""
    from mpi4py import MPI

    from invprior.bridge import TorchForward
    from invprior.model import DisentangledPrior, InverseProblem
    from invprior.pde import SourceProblem, grid_sensors, rectangle
    from invprior.priors import AuxVAE, GaussianFieldGenerator, GridSpec
    from invprior.priors.simulate import simulate
    from invprior.study import BaselineConfig, gp_baseline

    grid = GridSpec((8, 8))
    gen = AuxVAE(NAMES, ("m", "m"), {n: (0.2, 0.8) for n in NAMES}, [0.5] * 2, [0.2] * 2,
                 rec_dim=1, grid=grid, channels=(2,), hidden=4)  # fmt: skip
    model = SourceProblem(rectangle(MPI.COMM_WORLD, grid.bbox, (6, 6)),
                          grid_sensors(grid.bbox, 3), grid.shape, grid.bbox)  # fmt: skip
    y = model.forward(simulate("source", 1, 5, grid).fields[0].astype(np.float64))
    std = 0.05 * np.abs(y).max()
    y = y + std * np.random.default_rng(0).standard_normal(y.shape)
    problem = InverseProblem(DisentangledPrior(gen), TorchForward(model), std)
    config = BaselineConfig(num_fields=60, seed=3)
    base = gp_baseline(problem, torch.as_tensor(y), "source", config, linear=True)
    fields = torch.as_tensor(simulate("source", 60, 3, grid).fields, dtype=torch.float64)
    gp = GaussianFieldGenerator.from_samples(fields, 0.999, grid)
    basis, mean0 = gp.basis.numpy(), gp.mean.numpy().ravel()
    F, offset = model.affine_map()
    G = F @ basis / std
    cov = np.linalg.inv(G.T @ G + np.eye(gp.rec_dim))
    mean = mean0 + basis @ cov @ G.T @ (y - F @ mean0 - offset) / std
    field_std = np.sqrt(np.einsum("ij,jk,ik->i", basis, cov, basis))
    np.testing.assert_allclose(base["mean"].values.ravel(), mean, atol=1e-6 * abs(mean).max())
    np.testing.assert_allclose(base["std"].values.ravel(), field_std, rtol=1e-8)
    assert base.attrs["rank"] == gp.rec_dim and base.attrs["seed"] == 3
    assert base.attrs["method"].startswith("MAP + Laplace (exact")


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


def test_readme_recipe_is_the_worked_example():
    """The README's TOML and CSV are the example's files, and the example's config loads."""
    import re

    root = Path(__file__).resolve().parents[1]
    section = (root / "README.md").read_text().split("### Your own data and physics", 1)[1]
    toml = re.findall(r"```toml\n(.*?)```", section, flags=re.S)[0]
    example = root / "examples" / "own_problem"
    assert toml == (example / "study.toml").read_text()
    head = re.findall(r"```csv\n(.*?)\.\.\.\n```", section, flags=re.S)[0]
    assert head in (example / "data.csv").read_text()
    config = StudyConfig.from_toml(example / "study.toml")
    assert config.data.file == str(example / "data.csv")
    assert config.pde.form == f"{example / 'physics.py'}:residual"
    assert config.pde.dirichlet == {1: 0.0} and config.pde.robin == {2: (5.0, 0.0)}
    assert config.baseline_simulator is None and config.noise.prior == "halfnormal"


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_worked_example_passes_the_checks():
    from mpi4py import MPI

    from invprior.study.setup import check_study

    example = Path(__file__).resolve().parents[1] / "examples" / "own_problem"
    check_study(StudyConfig.from_toml(example / "study.toml"), MPI.COMM_WORLD)


def test_toml_paths_resolve_against_its_folder(tiny_prior, tmp_path, monkeypatch):
    """Every relative path of a TOML is relative to its folder, whatever the working one."""
    import shutil

    from invprior.study.setup import load_generator

    case = tmp_path / "case"
    (case / "priors").mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(tiny_prior.with_suffix(suffix), case / "priors" / f"tiny{suffix}")
    text = study_toml("priors/tiny", "../out").replace("[mesh]\nn = 8\n", "")
    text += '[mesh]\nfile = "geometry/l.xdmf"\n[pde]\nform = "physics.py:residual"\n'
    (case / "study.toml").write_text(text)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = StudyConfig.from_toml("../case/study.toml")
    base = Path("../case")
    assert config.prior.name == str(base / "priors" / "tiny")
    assert config.folder == base / ".." / "out" and config.folder.resolve() == tmp_path / "out"
    assert config.mesh.file == str(base / "geometry" / "l.xdmf")
    assert config.pde.form == f"{base / 'physics.py'}:residual"
    assert load_generator(config).grid.shape == (16, 16)  # found from another folder
    # shipped names, unknown bare names (misspelt shipped ones) and absolute paths stay
    shipped = StudyConfig.from_toml(
        _write(
            case / "shipped.toml",
            f'[prior]\nname = "source-auxvae"\n[output]\nfolder = "{tmp_path}"\n',
        )
    )
    assert shipped.prior.name == "source-auxvae" and shipped.folder == tmp_path
    typo = StudyConfig.from_toml(_write(case / "typo.toml", '[prior]\nname = "source-auxvea"\n'))
    assert typo.prior.name == "source-auxvea"
    with pytest.raises(ValueError, match=r"no shipped generator named 'source-auxvea'"):
        load_generator(typo)


def _write(path, text):
    path.write_text(text)
    return path


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


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_data_study_same_chains_on_one_and_all_ranks(tiny_prior, comm, tmp_path_factory):
    """A [data] + [pde] form study: the chains on COMM_SELF and on all ranks agree."""
    from mpi4py import MPI

    import xarray as xr
    from user_problem import data_toml, write_user_problem

    from invprior.study import run_study

    shared = Path(comm.bcast(str(tmp_path_factory.mktemp("data")) if comm.rank == 0 else None))
    if comm.rank == 0:
        write_user_problem(shared, tiny_prior, MPI.COMM_SELF)
        (shared / "study.toml").write_text(data_toml(tiny_prior, "all"))
    comm.Barrier()
    config = StudyConfig.from_toml(shared / "study.toml")
    serial = dataclasses.replace(config, folder=shared / f"self-{comm.rank}")
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


def test_baseline_seed_is_explicit_then_the_training_seed_then_zero(tmp_path):
    from invprior.priors import save
    from invprior.study import baseline_seed

    stem = save(tiny_auxvae(), tmp_path / "g", {"data": {"simulator": "source", "seed": 11}})
    generator = load(stem.with_suffix(""))
    assert baseline_seed(generator, "source", 4) == (4, "[baseline] seed")
    assert baseline_seed(generator, "source") == (11, "the generator's training data")
    assert baseline_seed(generator, "conductivity")[0] == 0  # data of another simulator
    assert baseline_seed(tiny_auxvae(), "source")[0] == 0  # no recorded training data


def test_oracle_gaussian_is_the_float64_moments_of_simulator_draws():
    from invprior.priors import GridSpec
    from invprior.priors.simulate import simulate
    from invprior.study import oracle_gaussian

    grid = GridSpec((6, 6))
    gp = oracle_gaussian("source", 40, 3, grid, 1.0)
    fields = simulate("source", 40, 3, grid).fields.astype(np.float64).reshape(40, -1)
    assert gp.basis.dtype == torch.float64
    np.testing.assert_allclose(gp.mean.numpy().ravel(), fields.mean(0), rtol=1e-12)
    cov = np.cov(fields, rowvar=False)
    basis = gp.basis.numpy()
    np.testing.assert_allclose(basis @ basis.T, cov, atol=1e-10 * np.abs(cov).max())
