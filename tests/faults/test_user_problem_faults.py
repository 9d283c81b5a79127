# SPDX-License-Identifier: MIT
"""Fault cases of a study on the user's own data and physics: refused before any work.

Each case writes a tiny study with a ``[data]`` file and, for the physics cases, a
``[pde] form``, runs ``invprior run`` (in this process, as ``test_config_faults.py`` does;
one case as the real command) and asserts status 2, the ``invprior run: error:`` line,
the named error (the file and its line, or the table and key) and that nothing was
written: no output folder, no checkpoint beside it.
"""

import numpy as np
import pytest
from fault_cli import assert_input_error, listing, run_cli
from user_problem import PHYSICS, data_toml

from invprior.cli import main

#: A valid observation file on the unit square (the tiny prior's box).
GOOD = "x,y,value\n0.25,0.25,0.1\n0.5,0.5,0.2\n0.75,0.75,0.3\n"


def _study(tmp_path, prior, csv=GOOD, noise="std = 0.02", extra=""):
    """Write physics.py, data.csv and study.toml into ``tmp_path``; the TOML's path."""
    (tmp_path / "physics.py").write_text(PHYSICS)
    (tmp_path / "data.csv").write_text(csv)
    path = tmp_path / "study.toml"
    path.write_text(data_toml(prior, tmp_path / "out", noise=noise) + extra)
    return path


def _refused(capsys, tmp_path, path, *fragments):
    status = main(["run", str(path)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "invprior run: error:" in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert set(listing(tmp_path)) <= {"data.csv", "data.npz", "physics.py", "study.toml"}


# (name, CSV text, fragments the message must hold)
BAD_FILES = [
    (
        "nan",
        GOOD.replace("0.2\n", "nan\n"),
        ["data.csv: value is missing, NaN or infinite at line 3"],
    ),
    ("empty value", GOOD.replace("0.2\n", "\n"), ["value is missing, NaN or infinite at line 3"]),
    ("short line", GOOD.replace(",0.2\n", "\n"), ["line 3 has 2 fields, the header 3"]),
    ("not a number", GOOD.replace("0.2\n", "high\n"), ["line 3: value = 'high' is not a num"]),
    ("duplicate", GOOD + "0.5,0.5,0.25\n", ["duplicate sensors: line 3, line 5", "(0.5, 0.5)"]),
    ("outside", GOOD.replace("0.5,0.5", "1.5,0.5"), ["sensors outside the mesh", "line 3"]),
    ("no value column", "x,y,val\n0.5,0.5,1\n", ["lacks ['value']"]),
    ("misspelt std", "x,y,value,sdt\n0.5,0.5,1,0.1\n", ["unknown header entries ['sdt']"]),
    ("std not positive", "x,y,value,std\n0.5,0.5,1,0\n", ["std must be > 0, got line 2 (0)"]),
    ("no rows", "x,y,value\n", ["holds no observation"]),
]


@pytest.mark.dolfinx
@pytest.mark.parametrize(("name", "csv", "fragments"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_observation_file_is_refused(tiny_prior, tmp_path, capsys, name, csv, fragments):
    path = _study(tmp_path, tiny_prior, csv=csv)
    _refused(capsys, tmp_path, path, *fragments)


# (name, noise lines, extra TOML, fragments)
BAD_SETTINGS = [
    ("std list too short", "std = [0.1, 0.2]", "",
     ["[noise] std lists 2 values but there are the 3 observations of"]),
    ("no noise", "seed = 0", "", ["[noise] seed and [data] are both given"]),
    ("std twice", "std = 0.1", "", ["a std column in", "and [noise] std"]),
    ("no prior scale", 'prior = "halfnormal"', "", ["[noise] prior = 'halfnormal' needs scale"]),
    ("prior and std", 'prior = "halfnormal"\nscale = 0.1\nstd = 0.1', "",
     ["[noise] prior (an unknown noise std) and std (a known one) are both set"]),
    ("truth and data", "std = 0.1", "[truth]\nseed = 3\n",
     ["[truth] and [data] are both given"]),
    ("baseline without simulator", "std = 0.1", "",
     ["[baseline] enabled = true, but a study on [data] has no truth"]),
    ("missing data file", "std = 0.1", "", ["observation file not found"]),
    ("missing form file", "std = 0.1", "", ["[pde] form = ", "no file", "nothere.py"]),
    ("missing function", "std = 0.1", "", ["has no function 'nope'", "'residual'"]),
    ("not a form", "std = 0.1", "",
     ["[pde] form = ", "is not a valid residual", "must return a UFL form"]),
    ("form raises", "std = 0.1", "", ["running", "failed: ZeroDivisionError"]),
    ("form with kind", "std = 0.1", "", ["[pde] form and [pde] kind are both given"]),
    ("unknown side", "std = 0.1", "", ["[pde] dirichlet.7: the keys are facet tags"]),
    ("dense nonlinear", "std = 0.1", "", ["[pde] dense = true, but the map of form"]),
]  # fmt: skip


def _edit(tmp_path, path, name):
    """Apply case ``name``'s change to the files of the study at ``path``."""
    text = path.read_text()
    if name == "std twice":
        (tmp_path / "data.csv").write_text("x,y,value,std\n0.5,0.5,1,0.1\n0.25,0.5,1,0.1\n")
    elif name == "baseline without simulator":
        text = text.replace("[baseline]\nenabled = false", "[baseline]\nenabled = true")
    elif name == "missing data file":
        (tmp_path / "data.csv").unlink()
    elif name == "missing form file":
        text = text.replace("physics.py:residual", "nothere.py:residual")
    elif name == "missing function":
        text = text.replace("physics.py:residual", "physics.py:nope")
    elif name == "not a form":
        text = text.replace("physics.py:residual", "physics.py:not_a_form")
    elif name == "form raises":
        (tmp_path / "physics.py").write_text(PHYSICS + "\n1 / 0\n")
    elif name == "form with kind":
        text = text.replace('form = "physics.py', 'kind = "source"\nform = "physics.py')
    elif name == "unknown side":
        text = text.replace("[pde.dirichlet]\n1 = 0.0", "[pde.dirichlet]\n7 = 0.0")
    elif name == "dense nonlinear":
        nonlinear = PHYSICS.replace("0.1 * ufl.inner", "(1 + u**2) * ufl.inner")
        (tmp_path / "physics.py").write_text(nonlinear)
        text = text.replace('form = "physics.py', 'dense = true\nform = "physics.py')
    path.write_text(text)


@pytest.mark.dolfinx
@pytest.mark.parametrize(
    ("name", "noise", "extra", "fragments"), BAD_SETTINGS, ids=[b[0] for b in BAD_SETTINGS]
)
def test_bad_user_problem_setting_is_refused(
    tiny_prior, tmp_path, capsys, name, noise, extra, fragments
):
    path = _study(tmp_path, tiny_prior, noise=noise, extra=extra)
    _edit(tmp_path, path, name)
    _refused(capsys, tmp_path, path, *fragments)


def test_npz_length_mismatch_is_refused(tiny_prior, tmp_path, capsys):
    path = _study(tmp_path, tiny_prior)
    np.savez(tmp_path / "data.npz", x=[0.2, 0.4], y=[0.5, 0.5], value=[1.0, 2.0, 3.0])
    path.write_text(path.read_text().replace("data.csv", "data.npz"))
    _refused(capsys, tmp_path, path, "data.npz: the arrays differ in length", "'value': 3")


def test_bad_data_from_the_command(tiny_prior, tmp_path):
    """The real command: status 2, the named row, no traceback, nothing written."""
    path = _study(tmp_path, tiny_prior, csv=GOOD.replace("0.3\n", "inf\n"))
    result = run_cli("run", path)
    assert_input_error(result, "run", "value is missing, NaN or infinite at line 4")
    assert listing(tmp_path) == ["data.csv", "physics.py", "study.toml"]


# (name, what the mesh file is, boundary TOML, fragments)
BAD_MESHES = [
    ("missing mesh file", None, "", ["[mesh] file: no file", "l.xdmf"]),
    ("no facet tags", "untagged", "", ["cannot read a mesh grid named 'mesh' and facet tags"]),
    ("unknown tag", "l", "[pde.neumann]\n7 = 1.0\n", ["[pde] neumann.7:", "tags no facet [7]"]),
    ("outside the grid", "wide", "", ["reaches outside the generator's grid", "l.xdmf"]),
]


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
@pytest.mark.parametrize(("name", "kind", "extra", "fragments"), BAD_MESHES,
                         ids=[b[0] for b in BAD_MESHES])  # fmt: skip
def test_bad_mesh_file_is_refused(tiny_prior, tmp_path, capsys, name, kind, extra, fragments):
    from mpi4py import MPI

    from user_problem import L_BOUNDARY, l_mesh, write_mesh

    from invprior.pde import rectangle, tag_boundaries

    path = _study(tmp_path, tiny_prior)
    text = path.read_text().replace("[mesh]\nn = 8\n", "").split("[pde.dirichlet]")[0]
    path.write_text(text + L_BOUNDARY + extra + '[mesh]\nfile = "l.xdmf"\n')
    if kind in ("l", "untagged"):
        mesh, tags = l_mesh(MPI.COMM_SELF)
        write_mesh(tmp_path / "l.xdmf", mesh, tags if kind == "l" else None)
    elif kind == "wide":
        mesh = rectangle(MPI.COMM_SELF, ((0.0, 0.0), (2.0, 1.0)), (4, 2))
        tags = tag_boundaries(mesh, {1: lambda x: x[0] < 1e-12, 5: lambda x: x[0] > 2 - 1e-12})
        mesh.name, tags.name = "mesh", "facet_tags"
        write_mesh(tmp_path / "l.xdmf", mesh, tags)
    status = main(["run", str(path)])
    err = capsys.readouterr().err
    assert status == 2, err
    for fragment in ["invprior run: error:", *fragments]:
        assert fragment in err, (fragment, err)
    assert not (tmp_path / "out").exists()


def test_mesh_file_excludes_n_and_needs_xdmf(tmp_path, capsys):
    for mesh, fragment in (('file = "a.xdmf"\nn = 4', "[mesh] file and [mesh] n are both"),
                           ('file = "a.msh"', "file must be an XDMF mesh (.xdmf)")):  # fmt: skip
        (tmp_path / "s.toml").write_text(f"[mesh]\n{mesh}\n")
        assert main(["run", str(tmp_path / "s.toml")]) == 2
        assert fragment in capsys.readouterr().err
