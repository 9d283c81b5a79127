# SPDX-License-Identifier: MIT
"""A user's simulator plugin (``invprior simulate --simulator``) and the NetCDF data layout."""

import json

import netCDF4
import numpy as np
import pytest
import xarray as xr

from invprior.cli import main
from invprior.priors import load
from invprior.priors.base import GridSpec
from invprior.priors.simulate import FieldDataset, simulate
from invprior.training_data import read_fields, run_simulator, write_fields
from invprior.validation import InputError

#: A user's simulator on a 16 x 32 grid over [0, 2] x [0, 1]: a bump at (x0, y0).
SIMULATOR = """
import numpy as np

GRID = {"shape": (16, 32), "bbox": ((0.0, 0.0), (2.0, 1.0))}
FACTORS = {
    "x0": {"units": "m", "range": (0.3, 1.7)},
    "y0": {"units": "m", "range": (0.2, 0.8)},
}


def simulate(num, rng):
    x0, y0 = rng.uniform(0.3, 1.7, num), rng.uniform(0.2, 0.8, num)
    spread = rng.uniform(0.1, 0.2, num)
    x, y = np.meshgrid(np.linspace(0, 2, 32), np.linspace(0, 1, 16))
    r2 = (x - x0[:, None, None]) ** 2 + (y - y0[:, None, None]) ** 2
    return np.exp(-r2 / spread[:, None, None] ** 2), {"x0": x0, "y0": y0, "spread": spread}
"""


def _plugin(tmp_path, text=SIMULATOR):
    path = tmp_path / "sim.py"
    path.write_text(text)
    return f"{path}:simulate"


def _assert_same(a: FieldDataset, b: FieldDataset):
    assert a.fields.dtype == b.fields.dtype
    np.testing.assert_array_equal(a.fields, b.fields)
    assert list(a.factors) == list(b.factors)
    for name in a.factors:
        np.testing.assert_array_equal(a.factors[name], b.factors[name])
    assert (a.aux_names, a.units, a.ranges, a.grid) == (b.aux_names, b.units, b.ranges, b.grid)
    assert json.loads(json.dumps(a.recipe)) == b.recipe  # JSON: tuples become lists


def test_simulator_plugin_draws_with_the_seed_and_records_its_metadata(tmp_path):
    spec = _plugin(tmp_path)
    data = run_simulator(spec, 5, 3)
    rng = np.random.default_rng(3)
    x0, y0 = rng.uniform(0.3, 1.7, 5), rng.uniform(0.2, 0.8, 5)
    np.testing.assert_array_equal(data.factors["x0"], x0)
    np.testing.assert_array_equal(data.factors["y0"], y0)
    assert data.fields.shape == (5, 16, 32) and data.fields.dtype == np.float32
    assert data.aux_names == ("x0", "y0") and "spread" in data.factors
    assert data.units == {"x0": "m", "y0": "m"}
    assert data.ranges == {"x0": (0.3, 1.7), "y0": (0.2, 0.8)}
    assert data.grid == GridSpec((16, 32), ((0.0, 0.0), (2.0, 1.0)))
    assert data.recipe == {
        "plugin": spec,
        "n": 5,
        "seed": 3,
        "parameters": {"x0": [0.3, 1.7], "y0": [0.2, 0.8]},
    }
    # the peak of each field is at its (x0, y0), to the grid's spacing
    iy, ix = np.unravel_index(data.fields.reshape(5, -1).argmax(1), (16, 32))
    assert np.abs(ix * 2 / 31 - x0).max() <= 1 / 31 + 1e-9
    assert np.abs(iy / 15 - y0).max() <= 0.5 / 15 + 1e-9
    _assert_same(data, run_simulator(spec, 5, 3))


def test_netcdf_round_trip_of_a_builtin_and_a_plugin_dataset(tmp_path):
    builtin = simulate("source", 6, 2, GridSpec((8, 8), ((0.0, 0.0), (1.0, 1.0))))
    _assert_same(builtin, read_fields(write_fields(builtin, tmp_path / "source.nc")))
    mine = run_simulator(_plugin(tmp_path), 4, 0)
    _assert_same(mine, read_fields(write_fields(mine, tmp_path / "mine.nc")))
    _assert_same(mine, read_fields(mine.save(tmp_path / "mine.npz")))  # .npz as well
    with netCDF4.Dataset(tmp_path / "mine.nc") as nc:  # the documented layout
        assert nc.variables["field"].dimensions == ("sample", "y", "x")
        assert nc.variables["x0"].units == "m"
        np.testing.assert_array_equal(nc.variables["y0"].range, [0.2, 0.8])
        np.testing.assert_array_equal(nc.bbox, [0.0, 0.0, 2.0, 1.0])
        assert nc.aux_names == "x0 y0" and json.loads(nc.recipe)["seed"] == 0


def test_netcdf_written_by_xarray_reads(tmp_path):
    rng = np.random.default_rng(0)
    fields = rng.random((3, 4, 6)).astype(np.float32)
    ds = xr.Dataset(
        {
            "field": (("sample", "y", "x"), fields),
            "depth": ("sample", [1.0, 2.0, 3.0], {"units": "m", "range": [0.0, 4.0]}),
            "noise": ("sample", [0.1, 0.2, 0.3]),
        },
        coords={"x": np.linspace(-1.0, 1.0, 6), "y": np.linspace(0.0, 3.0, 4)},
        attrs={"bbox": [-1.0, 0.0, 1.0, 3.0], "aux_names": "depth"},
    )
    ds.to_netcdf(tmp_path / "mine.nc")
    data = read_fields(tmp_path / "mine.nc")
    np.testing.assert_array_equal(data.fields, fields)
    assert data.aux_names == ("depth",) and data.units == {"depth": "m"}
    assert data.ranges == {"depth": (0.0, 4.0)} and data.recipe == {}
    assert data.grid == GridSpec((4, 6), ((-1.0, 0.0), (1.0, 3.0)))
    np.testing.assert_array_equal(data.factors["noise"], [0.1, 0.2, 0.3])


def test_simulate_and_train_on_a_plugin_netcdf_file(tmp_path, capsys):
    spec = _plugin(tmp_path)
    data = tmp_path / "fields.nc"
    assert (
        main(["simulate", "--simulator", spec, "--n", "64", "--seed", "5", "--out", str(data)])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["simulator"] == spec and printed["aux_names"] == ["x0", "y0"]
    out = tmp_path / "g"
    args = ["train", "auxvae", "--data", str(data), "--out", str(out), "--epochs", "1"]
    args += ["--batch-size", "16", "--rec-dim", "2", "--eval-n", "32", "--no-progress"]
    assert main([*args, "--threads", "1", "--kl-warmup-epochs", "0"]) == 0
    g = load(out)
    assert g.aux_names == ("x0", "y0") and g.aux_units == ("m", "m")
    assert g.aux_ranges == {"x0": (0.3, 1.7), "y0": (0.2, 0.8)}
    assert g.grid == GridSpec((16, 32), ((0.0, 0.0), (2.0, 1.0)))
    meta = g.metadata
    assert meta["data"]["plugin"] == spec and meta["data"]["seed"] == 5
    assert meta["metrics"]["heldout"] == {"simulator": spec, "n": 32, "seed": 1000008}
    # evaluate-prior draws its held-out data with the recipe's plugin, on the plugin's grid
    capsys.readouterr()
    assert main(["evaluate-prior", str(out), "--n", "32", "--seed", "77"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["simulator"] == spec and scores["seed"] == 77 and scores["n"] == 32
    assert 0.0 < scores["ssim_median"] <= 1.0
    assert main(["evaluate-prior", str(out), "--n", "32", "--simulator", "nope"]) == 2
    assert "--simulator must be one of ['source', 'conductivity'] or FILE.py:NAME, got 'nope'" in (
        capsys.readouterr().err
    )
    # a built-in simulator draws on another grid than this prior's: named, not a crash
    assert main(["evaluate-prior", str(out), "--n", "32", "--simulator", "source"]) == 2


# (name, replacement of the simulator text: old -> new, fragments of the message)
BAD_PLUGINS = [
    ("no function", ("def simulate(", "def draw("), ["has no function 'simulate'", "'draw'"]),
    ("no GRID", ("GRID = ", "SIZE = "), ["must define GRID = {'shape': (ny, nx)"]),
    ("bad FACTORS", ('"range": (0.3, 1.7)', '"range": (1.7, 0.3)'),
     ["FACTORS['x0']", "finite low < high"]),
    ("wrong shape", ("np.linspace(0, 1, 16)", "np.linspace(0, 1, 8)"),
     ["fields of shape (4, 8, 32)", "expected real numbers of shape (4, 16, 32)"]),
    ("factor missing", ('{"x0": x0, "y0": y0', '{"x0": x0, "y": y0'),
     ["no values for the FACTORS ['y0']"]),
    ("factor shape", ('"x0": x0,', '"x0": x0[:2],'), ["factor 'x0' has shape (2,)"]),
    ("NaN", ("return np.exp(", "return np.where(r2 < 0.01, np.nan, 1) * np.exp("),
     ["NaN or Inf in ['field']"]),
    ("out of range", ("rng.uniform(0.2, 0.8, num)", "rng.uniform(0.85, 0.9, num)"),
     ["factor 'y0' has values in", "outside its FACTORS range (0.2, 0.8)"]),
    ("raises", ("    x0, y0", "    1 / 0\n    x0, y0"), ["simulate raised ZeroDivisionError"]),
    ("not a tuple", ("return np.exp", "return [np.exp"), ["simulate must return (fields of"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "edit", "fragments"), BAD_PLUGINS, ids=[b[0] for b in BAD_PLUGINS]
)
def test_bad_simulator_plugin_is_refused(tmp_path, capsys, name, edit, fragments):
    text = SIMULATOR.replace(*edit)
    if name == "not a tuple":
        text = text.replace('"spread": spread}', '"spread": spread}]')
    assert text != SIMULATOR
    spec = _plugin(tmp_path, text)
    out = tmp_path / "out" / "d.nc"
    assert (
        main(["simulate", "--simulator", spec, "--n", "4", "--seed", "1", "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert f"invprior simulate: error: --simulator {spec}" in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not out.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--simulator", "nothere.py:simulate"], "no file nothere.py; check the path"),
        (["--simulator", "sim.py"], "expected 'path/to/file.py:function', got 'sim.py'"),
        ([], "name one simulator: source, conductivity or --simulator"),
        (["source", "--simulator", "x.py:f"], "name one simulator"),
    ],
)
def test_simulator_choice_is_checked(tmp_path, capsys, args, message):
    out = tmp_path / "d.nc"
    assert main(["simulate", *args, "--n", "4", "--seed", "1", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_output_suffix_is_refused(tmp_path, capsys):
    out = tmp_path / "d.csv"
    assert main(["simulate", "source", "--n", "4", "--seed", "1", "--out", str(out)]) == 2
    assert "data files end in .npz or .nc (NetCDF), got '.csv'" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"training data are \.nc \(NetCDF"):
        read_fields(out)


def test_heldout_scores_need_the_simulator_file(tmp_path, capsys):
    spec = _plugin(tmp_path)
    data = tmp_path / "fields.nc"
    write_fields(run_simulator(spec, 32, 1), data)
    (tmp_path / "sim.py").unlink()
    args = ["train", "auxvae", "--data", str(data), "--out", str(tmp_path / "g"), "--epochs", "1"]
    args += ["--batch-size", "16", "--rec-dim", "2", "--no-progress", "--threads", "1"]
    assert main([*args, "--eval-n", "8"]) == 2
    err = capsys.readouterr().err
    assert f"the data's recipe names simulator '{spec}' and seed 1" in err
    assert "or pass --eval-n 0" in err and not (tmp_path / "g.json").exists()
    assert main([*args, "--eval-n", "0"]) == 0
    assert load(tmp_path / "g").metadata["metrics"] == {}
