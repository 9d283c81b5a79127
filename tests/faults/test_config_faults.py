# SPDX-License-Identifier: MIT
"""Fault cases of the study configuration: refused before any work, naming table and key.

Most cases run ``invprior run`` in this process (``invprior.cli.main``, the same code path
as the command, without the seconds of imports a subprocess costs); a few run the real
command in a subprocess, two of them on 2 MPI ranks to show that every rank stops with
status 2 and none hangs. Every case asserts the ``invprior run: error:`` line, the named
table and key (or file, or option), status 2, and that the output folder was not created.
"""

import dataclasses
import tomllib
import types

import numpy as np
import pytest
from fault_cli import assert_input_error, listing, run_cli
from tiny_study import study_toml

from invprior.cli import main
from invprior.infer import MapConfig, MCMCConfig
from invprior.priors.simulate import simulate
from invprior.study import (
    OutputConfig,
    PDEConfig,
    SamplerConfig,
    StudyConfig,
    StudySettings,
    build_study,
)
from invprior.study.config import SIMULATORS
from invprior.study.setup import check_study
from invprior.validation import InputError


def _write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _with(text, table, lines):
    """``text`` with the ``key = value`` ``lines`` set in ``[table]`` (appended if absent)."""
    out = text.splitlines()
    for line in lines.splitlines():
        key, current = line.split("=")[0].strip(), None
        for i, row in enumerate(out):
            if row.startswith("["):
                current = row.strip("[]")
            elif current == table and row.split("=")[0].strip() == key:
                out[i] = line
                break
        else:
            if f"[{table}]" not in out:
                out.append(f"[{table}]")
            out.insert(out.index(f"[{table}]") + 1, line)
    return "\n".join(out) + "\n"


def _run_in_process(capsys, *args):
    """``invprior run ARGS`` in this process: (status, stderr)."""
    status = main(["run", *map(str, args)])
    return status, capsys.readouterr().err


def _assert_refused(status, err, *fragments):
    assert status == 2, err
    assert "invprior run: error:" in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# (table, line added to the tiny study, fragments the message must hold)
BAD_VALUES = [
    ("pde", 'dense = "false"', ["[pde] dense must be true or false", "'false'"]),
    ("mesh", "n = 8.5", ["[mesh] n must be an integer", "8.5"]),
    ("mesh", "n = 1", ["[mesh] n must be >= 2"]),
    ("pde", "kappa = -1.0", ["[pde] kappa must be > 0", "-1.0"]),
    ("pde", "kappa = 0", ["[pde] kappa must be > 0"]),
    ("pde", "kappa = nan", ["[pde] kappa must be finite", "nan"]),
    ("pde", "source = inf", ["[pde] source must be finite"]),
    ("pde", 'kind = "heat"', ["[pde] kind must be", "'heat'"]),
    ("pde", 'solver = "cg"', ["[pde] solver must be"]),
    ("pde", "kappa = true", ["[pde] kappa must be a number", "True"]),
    ("noise", "std = inf", ["[noise] std must be", "inf"]),
    ("noise", "std = -0.1", ["[noise] std must be > 0"]),
    ("noise", "seed = -1", ["[noise] seed must be >= 0"]),
    ("sensors", 'per_side = "3"', ["[sensors] per_side must be an integer", "'3'"]),
    ("sensors", "per_side = 0", ["[sensors] per_side must be >= 1"]),
    ("prior", "tau = 0.0", ["[prior] tau must be > 0"]),
    ("prior", 'device = "tpu"', ["[prior] device must be"]),
    ("prior", "flow_steps = 0", ["[prior] flow_steps must be >= 1"]),
    ("prior", "fixed_eps = 1", ["[prior] fixed_eps must be true or false"]),
    ("truth", 'simulator = "heat"', ["[truth] simulator must be one of"]),
    ("truth", "index = -1", ["[truth] index must be >= 0"]),
    ("map", "num_restarts = 0", ["[map] num_restarts must be >= 1"]),
    ("map", "lr = 0", ["[map] lr must be > 0"]),
    ("map", 'optimizer = "sgd"', ["[map] optimizer must be"]),
    ("map", "max_iterations = 2.0", ["[map] max_iterations must be an integer"]),
    ("map", "num_steps = 50", ["[map] num_steps has moved to [map] max_iterations", "= 50"]),
    ("baseline", "num_steps = 9", ["[baseline] num_steps has moved to [baseline] max_it"]),
    ("mcmc", "num_samples = 6.5", ["[mcmc] num_samples must be an integer", "6.5"]),
    ("mcmc", "num_samples = 3", ["[mcmc] num_samples must be >= 4"]),
    ("mcmc", "target_accept_prob = 1.0", ["[mcmc] target_accept_prob must lie in (0, 1)"]),
    ("mcmc", "step_size = 0", ["[mcmc] step_size must be > 0"]),
    ("mcmc", 'full_mass = "yes"', ["[mcmc] full_mass must be true or false"]),
    ("mcmc", 'kernel = "mala"', ["[mcmc] kernel must be one of ['nuts', 'hmc', 'chees']"]),
    ("mcmc", "kernel = 1", ["[mcmc] kernel must be a string"]),
    ("mcmc", "seed = 3", ["[mcmc] seed has moved to [study] seed", "seed = 3 under a [study]"]),
    ("mcmc", "parallel_chains = true", ["[mcmc] parallel_chains has moved to [study]"]),
    ("mcmc", "thin = 2", ["unknown keys ['thin'] in [mcmc]", "'kernel'"]),
    ("study", "seed = 1.5", ["[study] seed must be an integer"]),
    ("study", "seed = -3", ["[study] seed must be >= 0"]),
    ("study", 'parallel_chains = "true"', ["[study] parallel_chains must be true or false"]),
    ("study", 'kernel = "hmc"', ["unknown keys ['kernel'] in [study]", "'seed'"]),
    ("baseline", "variance_fraction = 1.5", ["[baseline] variance_fraction must lie in"]),
    ("baseline", "seed = 5", ["[baseline] seed equals [truth] seed"]),
    ("baseline", 'enabled = "no"', ["[baseline] enabled must be true or false"]),
    ("approximation_error", "refine_steps = -1", ["[approximation_error] refine_steps"]),
    ("approximation_error", "enabled = true\nseed = 5", ["[approximation_error] seed equals"]),
    ("output", "folder = 3", ["[output] folder must be a string"]),
    ("output", 'place = "x"', ["unknown keys ['place'] in [output]"]),
]


@pytest.mark.parametrize(
    ("table", "line", "fragments"), BAD_VALUES, ids=[f"{t}:{v}" for t, v, _ in BAD_VALUES]
)
def test_bad_value_is_refused_naming_table_and_key(
    table, line, fragments, tiny_prior, tmp_path, capsys
):
    out = tmp_path / "out"
    # [output] folder = 3 replaces the folder; every other case writes into `out`
    text = study_toml(tiny_prior, None if line == "folder = 3" else out)
    path = _write(tmp_path, _with(text, table, line))
    status, err = _run_in_process(capsys, path)
    _assert_refused(status, err, f"{path}: ", *fragments)
    assert not out.exists()
    assert listing(tmp_path) == ["study.toml"]


def test_too_few_draws_over_all_chains_are_refused(tiny_prior, tmp_path, capsys):
    """6 draws a chain pass alone; on one chain (--chains 1) they are under the 10 needed."""
    out = tmp_path / "out"
    path = _write(tmp_path, study_toml(tiny_prior, out))
    status, err = _run_in_process(capsys, path, "--chains", "1")
    _assert_refused(
        status, err, "with --chains 1: [mcmc] num_samples * num_chains must be >= 10",
        "6 * 1 = 6",
    )  # fmt: skip
    text = study_toml(tiny_prior, out).replace("num_samples = 6", "num_samples = 4")
    status, err = _run_in_process(capsys, _write(tmp_path, text))
    _assert_refused(status, err, "[mcmc] num_samples * num_chains must be >= 10", "4 * 2 = 8")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "fragment"),
    [(["--threads", "0"], "--threads must be >= 1 (torch threads per process), got 0"),
     (["--chains", "0"], "--chains sets [mcmc] num_chains, and num_chains must be >= 1")],
)  # fmt: skip
def test_bad_option_is_refused(option, fragment, tiny_prior, tmp_path, capsys):
    out = tmp_path / "out"
    status, err = _run_in_process(capsys, _write(tmp_path, study_toml(tiny_prior, out)), *option)
    _assert_refused(status, err, fragment)
    assert not out.exists()


def test_bad_file_is_refused_naming_it(tmp_path, capsys):
    status, err = _run_in_process(capsys, tmp_path / "absent.toml")
    _assert_refused(status, err, f"{tmp_path / 'absent.toml'}: configuration file not found")
    status, err = _run_in_process(capsys, tmp_path)
    _assert_refused(status, err, f"{tmp_path}: cannot read the configuration file")
    bad = _write(tmp_path, '[mesh]\nn = 8\n[pde\nkind = "source"\n', "bad.toml")
    status, err = _run_in_process(capsys, bad)
    _assert_refused(status, err, f"{bad}: not valid TOML", "(at line 3, column 5)")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[mesh]\n")
    status, err = _run_in_process(capsys, binary)
    _assert_refused(status, err, f"{binary}: not UTF-8 text")
    plain = _write(tmp_path, "mesh = 8\n", "plain.toml")
    status, err = _run_in_process(capsys, plain)
    _assert_refused(status, err, "[mesh] must be a table", "mesh = 8")
    assert listing(tmp_path) == ["bad.toml", "binary.toml", "plain.toml"]


def test_bad_prior_is_refused_before_any_mesh(tiny_prior, tmp_path, capsys):
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt"
    corrupt.with_suffix(".json").write_text("{not json")
    corrupt.with_suffix(".safetensors").write_bytes(b"")
    cases = {
        "no-such-prior": "no shipped generator named 'no-such-prior'",
        str(tmp_path / "missing" / "ckpt"): "checkpoint files not found",
        str(corrupt): f"{corrupt}.json",
    }
    for name, fragment in cases.items():
        path = _write(tmp_path, study_toml(name, out))
        status, err = _run_in_process(capsys, path)
        _assert_refused(status, err, f"[prior] name = {name!r}", fragment)
        # build_study loads the generator first: with no communicator the mesh could not
        # even be built, yet the [prior] error comes out
        config = StudyConfig.from_toml(path)
        with pytest.raises(InputError, match=r"\[prior\] name"):
            build_study(config, None)
    text = _with(study_toml(tiny_prior, out), "prior", "fixed_eps = true")
    status, err = _run_in_process(capsys, _write(tmp_path, text))
    _assert_refused(status, err, "[prior] fixed_eps and flow_steps apply to DL-CFM")
    assert not out.exists()


def test_rank_groups_that_cannot_split_are_refused(tiny_prior, tmp_path):
    text = _with(study_toml(tiny_prior), "study", "parallel_chains = true")
    config = StudyConfig.from_dict(tomllib.loads(text))  # 2 chains
    assert check_study(config, types.SimpleNamespace(rank=0, size=4)) is None
    for rank in range(3):  # every rank alike
        with pytest.raises(InputError, match=r"\[study\] parallel_chains = true with num_chains"):
            check_study(config, types.SimpleNamespace(rank=rank, size=3))
    assert config.study == StudySettings(seed=0, parallel_chains=True)
    serial = dataclasses.replace(
        config, study=dataclasses.replace(config.study, parallel_chains=False)
    )
    assert check_study(serial, types.SimpleNamespace(rank=0, size=3)) is None


def test_good_configurations_pass(tiny_prior):
    """The checks refuse what they should only: the tiny study and the examples pass."""
    config = StudyConfig.from_dict(tomllib.loads(study_toml(tiny_prior)))
    assert check_study(config) is None
    assert config.mcmc.num_samples == 6 and config.output.folder.name == "study"
    ints = StudyConfig.from_dict({"pde": {"kappa": 2}, "map": {"lr": 1}})
    assert ints.pde.kappa == 2.0 and isinstance(ints.pde.kappa, float)
    assert isinstance(ints.map.lr, float)
    assert OutputConfig(folder="elsewhere").folder.name == "elsewhere"
    # the simulators [truth] accepts are those simulate() knows
    for name in SIMULATORS:
        assert simulate(name, 1, 0).fields.shape[0] == 1
    with pytest.raises(ValueError, match="unknown simulator"):
        simulate("heat", 1, 0)


def test_dataclasses_reject_bad_keywords_without_a_table():
    """Built directly (not from TOML), the configs name the field alone."""
    with pytest.raises(InputError, match=r"^num_samples must be an integer, got 6\.5$"):
        MCMCConfig(num_samples=6.5)
    with pytest.raises(InputError, match=r"^num_samples must be >= 4"):
        MCMCConfig(num_samples=3)
    with pytest.raises(InputError, match=r"^max_dense_dim must be >= 0"):
        MCMCConfig(max_dense_dim=-1)
    with pytest.raises(InputError, match=r"^tolerance_grad must be >= 0"):
        MapConfig(tolerance_grad=-1e-9)
    with pytest.raises(InputError, match=r"^kappa must be > 0"):
        PDEConfig(kappa=-1.0)
    kernels = r"\['nuts', 'hmc', 'chees'\]"
    with pytest.raises(InputError, match=rf"^kernel must be one of {kernels}"):
        SamplerConfig(kernel="mala")
    with pytest.raises(InputError, match=r"^num_samples must be >= 4"):
        SamplerConfig(num_samples=3)  # an MCMCConfig, checked as one
    with pytest.raises(InputError, match=r"^seed must be >= 0"):
        StudySettings(seed=-1)
    with pytest.raises(InputError, match=r"^folder must be a non-empty path, got ''$"):
        OutputConfig(folder="")
    assert MCMCConfig(step_size=1).step_size == 1.0


@pytest.mark.dolfinx
def test_source_problem_refuses_a_non_physical_conductivity():
    from mpi4py import MPI

    from invprior.pde import ConductivityProblem, SourceProblem, unit_square

    mesh = unit_square(MPI.COMM_SELF, 2)
    for kappa in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="kappa must be a finite positive"):
            SourceProblem(mesh, [[0.5, 0.5]], (3, 3), kappa=kappa)
    with pytest.raises(ValueError, match="source must be a finite number"):
        ConductivityProblem(mesh, [[0.5, 0.5]], (3, 3), source=float("nan"))
    y = SourceProblem(mesh, [[0.5, 0.5]], (3, 3), kappa=2).forward(np.ones((3, 3)))
    assert y.shape == (1,) and y[0] > 0  # an int conductivity is a conductivity


def test_compare_refuses_bad_input(tiny_prior, tmp_path, capsys):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(study_toml(tiny_prior))
    b.write_text(study_toml(tiny_prior).replace("relative = 0.05", "relative = 0.1"))
    out = tmp_path / "cmp"

    def refused(*args):
        assert main(["compare", *map(str, args), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "invprior compare: error:" in err
        return err

    assert "[noise] of b differs from a's" in refused(a, b)
    assert "at least two configuration files" in refused(a)
    assert "at least two configuration files" in refused(a, tmp_path / "x" / "a.toml")
    c = _write(tmp_path, _with(study_toml(tiny_prior), "pde", "kappa = -1.0"), "c.toml")
    assert f"{c}: [pde] kappa must be > 0" in refused(a, c)
    d = _write(tmp_path, study_toml("no-such-prior"), "d.toml")
    assert f"{d}: [prior] name = 'no-such-prior'" in refused(a, d)
    assert "--threads must be >= 1" in refused(a, c, "--threads", "0")
    assert not out.exists()


def test_report_refuses_a_folder_without_a_study(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "invprior report: error:" in err and "posterior.nc not found" in err
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "absent is not a folder" in capsys.readouterr().err
    (tmp_path / "posterior.nc").write_text("not a netCDF file")
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a readable study DataTree" in capsys.readouterr().err
    assert listing(tmp_path) == ["posterior.nc"]


# The real command in a subprocess: the imports, the error line and the exit status.


@pytest.mark.parametrize(
    ("table", "line", "fragment"),
    [("pde", "kappa = -1.0", "[pde] kappa must be > 0")],
)  # fmt: skip
def test_cli_refuses_bad_values(table, line, fragment, tiny_prior, tmp_path):
    out = tmp_path / "out"
    path = _write(tmp_path, _with(study_toml(tiny_prior, out), table, line))
    result = run_cli("run", path, cwd=tmp_path)
    assert_input_error(result, "run", fragment, str(path))
    assert not out.exists()


def test_cli_refuses_a_toml_syntax_error(tmp_path):
    path = _write(tmp_path, "[mesh]\nn = = 8\n")
    result = run_cli("run", path, "--out", tmp_path / "out", cwd=tmp_path)
    assert_input_error(result, "run", f"{path}: not valid TOML", "line 2")
    assert listing(tmp_path) == ["study.toml"]


@pytest.mark.parametrize(
    ("table", "line", "fragment"),
    [("mesh", "n = 8.5", "[mesh] n must be an integer, got 8.5"),
     ("prior", None, "[prior] name = ")],
)  # fmt: skip
def test_cli_on_two_ranks_every_rank_stops_with_status_2(table, line, fragment, tmp_path):
    """Under mpiexec every rank raises the same error: status 2, one message, no hang."""
    out = tmp_path / "out"
    text = study_toml(tmp_path / "missing" / "ckpt" if line is None else "source-auxvae", out)
    path = _write(tmp_path, text if line is None else _with(text, table, line))
    result = run_cli("run", path, ranks=2, cwd=tmp_path)
    assert_input_error(result, "run", fragment)
    assert result.stderr.count("invprior run: error:") == 1  # rank 0 prints
    assert not out.exists()
