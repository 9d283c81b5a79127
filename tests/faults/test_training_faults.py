# SPDX-License-Identifier: MIT
"""Faults of ``invprior train``, ``simulate`` and ``evaluate-prior``: status 2, nothing written.

Every case stops before training (or simulating) starts, so each costs only the start-up
of the command.
"""

import os

import numpy as np
import pytest
import xarray as xr
from fault_cli import assert_input_error, listing, run_cli

from invprior.priors.simulate import simulate

TINY = ("--epochs", "1", "--batch-size", "16", "--eval-n", "0", "--no-progress")


@pytest.fixture
def data(tmp_path):
    """A small, valid data set (64 source fields) on disk."""
    return simulate("source", 64, 4).save(tmp_path / "data" / "d.npz")


def _train(data, out, *extra, model="auxvae"):
    return run_cli("train", model, "--data", data, "--out", out, *TINY, *extra)


def test_non_finite_fields_exit_2_and_write_no_checkpoint(data, tmp_path):
    with np.load(data) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["fields"][[2, 30]] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    out = tmp_path / "out"
    result = _train(tmp_path / "nan.npz", out / "g", "--no-rec-shift")
    assert_input_error(
        result, "train", "nan.npz: NaN or Inf values: fields in 2 of 64 samples (rows [2, 30])"
    )
    assert listing(out) == []


def test_text_file_named_npz(tmp_path):
    (tmp_path / "d.npz").write_text("x0,y0\n0.5,0.5\n")
    result = _train(tmp_path / "d.npz", tmp_path / "out" / "g")
    assert_input_error(result, "train", f"{tmp_path / 'd.npz'} is not an .npz archive")
    assert "pickled" not in result.stderr
    assert listing(tmp_path / "out") == []


def test_missing_data_file(tmp_path):
    result = _train(tmp_path / "none.npz", tmp_path / "out" / "g")
    assert_input_error(result, "train", f"{tmp_path / 'none.npz'}: no such file")
    assert listing(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--epochs", "0", "these settings must be positive: {'epochs': 0}"),
        ("--threads", "0", "--threads must be >= 1 (torch threads per process), got 0"),
        ("--eval-n", "-1", "--eval-n must be >= 0"),
    ],
)
def test_bad_option_values(data, tmp_path, option, value, message):
    result = _train(data, tmp_path / "out" / "g", option, value)
    assert_input_error(result, "train", message)
    assert listing(tmp_path / "out") == []


def test_dlcfm_without_base(data, tmp_path):
    result = _train(data, tmp_path / "out" / "flow", model="dlcfm")
    assert_input_error(result, "train", "--base", "required for dlcfm")
    assert listing(tmp_path / "out") == []


def test_output_under_a_file_writes_nothing(data, tmp_path):
    (tmp_path / "taken").write_text("keep")
    result = _train(data, tmp_path / "taken" / "models" / "g")
    assert_input_error(result, "train", "--out", "is a file, so the folder")
    assert listing(tmp_path) == ["data", "data/d.npz", "taken"]
    assert (tmp_path / "taken").read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_writes_nothing(data, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = _train(data, locked / "g")
        assert_input_error(result, "train", "--out", "cannot write in")
        assert listing(locked) == []
    finally:
        locked.chmod(0o700)


def test_simulate_bad_count_writes_nothing(tmp_path):
    result = run_cli("simulate", "source", "--n", "0", "--seed", "1", "--out", tmp_path / "d.npz")
    assert_input_error(result, "simulate", "--n must be a positive integer")
    assert listing(tmp_path) == []


def test_evaluate_prior_that_cannot_be_loaded(tmp_path):
    (tmp_path / "p.json").write_text("{not json")
    (tmp_path / "p.safetensors").write_bytes(b"")
    result = run_cli("evaluate-prior", tmp_path / "p", "--n", "10", "--out", tmp_path / "figs")
    assert_input_error(result, "evaluate-prior", f"cannot load prior '{tmp_path / 'p'}'")
    assert listing(tmp_path) == ["p.json", "p.safetensors"]


def _netcdf(path, fields=None, drop=(), dims=("sample", "y", "x"), depth_attrs=None):
    """A NetCDF data file of 32 fields on a 16 x 16 grid, with one named factor ``depth``."""
    rng = np.random.default_rng(0)
    fields = rng.random((32, 16, 16)).astype(np.float32) if fields is None else fields
    attrs = {"units": "m", "range": [0.0, 1.0]} if depth_attrs is None else depth_attrs
    variables = {"field": (dims, fields), "depth": ("sample", rng.random(32), attrs)}
    ds = xr.Dataset(
        {k: v for k, v in variables.items() if k not in drop},
        attrs={"bbox": [0.0, 0.0, 1.0, 1.0], "aux_names": "depth"},
    )
    ds.to_netcdf(path)
    return path


def _nan_fields():
    fields = np.random.default_rng(1).random((32, 16, 16)).astype(np.float32)
    fields[[3, 9], 4, 4] = np.nan
    return fields


# (name, keyword arguments of _netcdf, fragments of the message)
BAD_NETCDF = [
    ("missing field", {"drop": ("field",)}, ["expected a variable 'field' with dimensions "
                                             "('sample', 'y', 'x'), got no such variable"]),
    ("wrong dims", {"dims": ("sample", "x", "y")}, ["got ('sample', 'x', 'y')"]),
    ("NaN", {"fields": _nan_fields()}, ["NaN or Inf values: fields in 2 of 32 samples "
                                        "(rows [3, 9])"]),
    ("missing factor", {"drop": ("depth",)}, ["aux_names lists ['depth'], which have no "
                                              "variable"]),
    ("no units", {"depth_attrs": {"range": [0.0, 1.0]}},
     ["the named factor 'depth' needs the attributes 'units' (text) and 'range'"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kwargs", "fragments"), BAD_NETCDF, ids=[b[0] for b in BAD_NETCDF]
)
def test_bad_netcdf_data_file_writes_nothing(tmp_path, name, kwargs, fragments):
    path = _netcdf(tmp_path / "d.nc", **kwargs)
    result = _train(path, tmp_path / "out" / "g")
    assert_input_error(result, "train", f"{path}: ", *fragments)
    assert listing(tmp_path / "out") == []


def test_text_file_named_nc(tmp_path):
    (tmp_path / "d.nc").write_text("x0,y0\n0.5,0.5\n")
    result = _train(tmp_path / "d.nc", tmp_path / "out" / "g")
    assert_input_error(result, "train", f"{tmp_path / 'd.nc'} is not a readable NetCDF file")
    assert listing(tmp_path / "out") == []
