# SPDX-License-Identifier: MIT
import importlib
import json
import os

import numpy as np
import pytest

from invprior.cli import main
from invprior.priors import (
    FieldDataset,
    GridSpec,
    simulate,
    simulate_conductivity,
    simulate_sources,
)
from invprior.priors.simulate import CONDUCTIVITY_PARAMETERS, SOURCE_PARAMETERS, source_fields
from invprior.validation import InputError

# the module, not the function of the same name that invprior.priors exports
simulate_module = importlib.import_module("invprior.priors.simulate")

SIMULATORS = [simulate_sources, simulate_conductivity]


@pytest.mark.parametrize("sim", SIMULATORS)
def test_deterministic_given_seed(sim):
    a, b, c = sim(20, 3), sim(20, 3), sim(20, 4)
    assert a.fields.dtype == np.float32 and a.fields.shape == (20, 64, 64)
    np.testing.assert_array_equal(a.fields, b.fields)
    for k in a.factors:
        np.testing.assert_array_equal(a.factors[k], b.factors[k])
    assert not np.array_equal(a.fields, c.fields)


@pytest.mark.parametrize(
    ("sim", "table"),
    [(simulate_sources, SOURCE_PARAMETERS), (simulate_conductivity, CONDUCTIVITY_PARAMETERS)],
)
def test_factor_ranges_names_and_units(sim, table):
    data = sim(500, 0)
    assert data.aux_names == tuple(k for k, v in table.items() if v[3])
    assert data.aux.shape == (500, 4)
    for name, (lo, hi, unit, _) in table.items():
        v = data.factors[name]
        assert v.shape == (500,)
        assert lo <= v.min() and v.max() <= hi, name
        assert data.ranges[name] == pytest.approx((lo, hi))
        assert data.units[name] == unit
    assert np.isfinite(data.fields).all()


def test_named_factors_independent():
    data = simulate_sources(4000, 1)
    c = np.corrcoef(data.aux.T)
    assert np.abs(c - np.eye(4)).max() < 0.06


def test_source_peak_at_named_position():
    grid = GridSpec()
    data = simulate_sources(200, 2, grid)
    ny, nx = grid.shape
    iy, ix = np.unravel_index(data.fields.reshape(200, -1).argmax(1), (ny, nx))
    x, y = ix / (nx - 1), iy / (ny - 1)
    # the dominant source wins except where the secondary one sits on top of it
    assert np.mean(np.hypot(x - data.factors["x0"], y - data.factors["y0"]) < 0.05) > 0.95


def test_source_fields_in_torch_match_numpy_and_differentiate():
    import torch

    grid = GridSpec((12, 10), bbox=((0.0, 0.0), (2.0, 1.0)))
    data = simulate_sources(3, 5, grid)
    factors = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in data.factors.items()}
    fields = source_fields(factors, grid)
    assert fields.dtype == torch.float64 and fields.shape == (3, 12, 10)
    np.testing.assert_allclose(fields.numpy(), source_fields(data.factors, grid), rtol=1e-12)
    np.testing.assert_allclose(fields.numpy(), data.fields, rtol=1e-6, atol=1e-6)
    names = list(factors)
    inputs = tuple(factors[k][:1].clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(
        lambda *v: source_fields(dict(zip(names, v, strict=True)), grid), inputs
    )


def test_conductivity_kl_coefficients_standard_normal():
    data = simulate_conductivity(3000, 5)
    kl = np.stack([data.factors[f"kl_{k}"] for k in range(8)], 1)
    assert np.abs(kl.mean(0)).max() < 0.1 and np.abs(kl.std(0) - 1).max() < 0.1


def test_save_load_round_trip(tmp_path):
    grid = GridSpec((16, 32), ((0.0, 0.0), (2.0, 1.0)))
    data = simulate("conductivity", 7, 11, grid)
    path = data.save(tmp_path / "d.npz")
    back = FieldDataset.load(path)
    np.testing.assert_array_equal(back.fields, data.fields)
    assert back.grid == grid and back.aux_names == data.aux_names
    assert back.recipe["seed"] == 11 and back.recipe["simulator"] == "conductivity"
    np.testing.assert_array_equal(back.aux, data.aux)
    assert back.units == data.units
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate_sources(0, 1)
    with pytest.raises(ValueError, match="unknown simulator"):
        simulate("darcy", 1, 1)
    with pytest.raises(TypeError, match="GridSpec"):
        simulate_sources(1, 1, (64, 64))


def _archive(tmp_path, n=7):
    """A small valid data set on disk and its arrays, for making damaged copies."""
    path = simulate("source", n, 3, GridSpec((8, 8))).save(tmp_path / "good.npz")
    with np.load(path) as data:
        return path, {k: data[k] for k in data.files}


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def test_load_missing_file_or_folder(tmp_path):
    with pytest.raises(InputError, match=r"missing\.npz: no such file"):
        FieldDataset.load(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="is a folder"):
        FieldDataset.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"x0,y0\n0.5,0.5\n", "is not an .npz archive"),
        (b"", "is not an .npz archive"),
        (b"PK\x03\x04 truncated zip", "is not an .npz archive"),
    ],
)
def test_load_refuses_a_file_that_is_not_an_npz_archive(tmp_path, content, message):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        FieldDataset.load(path)
    assert str(path) in str(err.value) and "pickle" not in str(err.value)


def test_load_refuses_a_single_npy_array(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 8, 8)))
    with pytest.raises(InputError, match=r"a\.npy holds a single array"):
        FieldDataset.load(tmp_path / "a.npy")


@pytest.mark.parametrize("array", ["fields", "factor__x0", "meta"])
def test_load_names_a_missing_array(tmp_path, array):
    _, arrays = _archive(tmp_path)
    path = _write(tmp_path / "bad.npz", {k: v for k, v in arrays.items() if k != array})
    with pytest.raises(InputError, match=rf"bad\.npz.*'?{array}'?") as err:
        FieldDataset.load(path)
    assert array in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=7), "format version 7"),
        (lambda m: m.pop("aux_names"), r"'aux_names': 'NoneType'"),
        (lambda m: m.update(ranges={"x0": [0.0]}), r"meta\['ranges'\]"),
        (lambda m: m["grid"].update(shape=[8.5, 8]), r"meta\['grid'\]"),
        (lambda m: m["grid"].update(shape=[1, 8]), r"meta\['grid'\]"),
        (lambda m: m.update(aux_names=["x0", "depth"]), r"aux_names \['depth'\]"),
        (lambda m: m["units"].pop("x0"), r"named factors \['x0'\] need an entry in units"),
    ],
)
def test_load_names_a_bad_meta_entry(tmp_path, change, message):
    _, arrays = _archive(tmp_path)
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    path = _write(tmp_path / "bad.npz", {**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(InputError, match=message) as err:
        FieldDataset.load(path)
    assert str(path) in str(err.value)


def test_load_refuses_meta_that_is_not_a_json_object(tmp_path):
    _, arrays = _archive(tmp_path)
    path = _write(tmp_path / "bad.npz", {**arrays, "meta": np.array("[1, 2]")})
    with pytest.raises(InputError, match="'meta' must be one JSON object"):
        FieldDataset.load(path)
    _write(path, {**arrays, "meta": np.array("{not json")})
    with pytest.raises(InputError, match="'meta' must be one JSON object"):
        FieldDataset.load(path)


@pytest.mark.parametrize(
    ("array", "value", "message"),
    [
        ("fields", np.zeros((7, 64), np.float32), r"fields must have shape \(n, 8, 8\)"),
        ("fields", np.zeros((7, 8, 9), np.float32), r"got \(7, 8, 9\)"),
        ("factor__x0", np.zeros(5), r"factors \['x0'\] must be real numpy arrays of shape \(7,\)"),
        ("factor__y0", np.array(["a"] * 7), r"factors \['y0'\]"),
    ],
)
def test_load_names_a_wrong_shape_or_type(tmp_path, array, value, message):
    _, arrays = _archive(tmp_path)
    path = _write(tmp_path / "bad.npz", {**arrays, array: value})
    with pytest.raises(InputError, match=message) as err:
        FieldDataset.load(path)
    assert str(err.value).startswith(f"{path}: ")


def test_load_counts_the_non_finite_rows(tmp_path):
    _, arrays = _archive(tmp_path)
    fields, width = arrays["fields"].copy(), arrays["factor__width"].copy()
    fields[1, 2, 3], fields[4, 0, 0], width[6] = np.nan, np.inf, -np.inf
    path = _write(tmp_path / "bad.npz", {**arrays, "fields": fields, "factor__width": width})
    with pytest.raises(InputError) as err:
        FieldDataset.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: NaN or Inf values")
    assert "fields in 2 of 7 samples (rows [1, 4])" in message
    assert "factors['width'] in 1 of 7 samples (rows [6])" in message


def test_construction_and_save_refuse_non_finite_data(tmp_path):
    data = simulate("source", 12, 1, GridSpec((8, 8)))
    fields = data.fields.copy()
    fields[np.arange(12) % 2 == 0] = np.nan
    with pytest.raises(
        InputError, match=r"fields in 6 of 12 samples \(rows \[0, 2, 4, 6, 8, ...\]"
    ):
        FieldDataset(fields, data.factors, data.aux_names, data.units, data.ranges, data.grid)
    factors = {**data.factors, "x0": np.full(12, np.nan)}
    with pytest.raises(InputError, match=r"factors\['x0'\] in 12 of 12"):
        FieldDataset(data.fields, factors, data.aux_names, data.units, data.ranges, data.grid)
    with pytest.raises(InputError, match="real numpy array"):
        FieldDataset(data.fields.tolist(), data.factors, (), {}, {}, data.grid)
    data.fields[3, 0, 0] = np.nan  # changed after construction
    with pytest.raises(InputError, match=r"rows \[3\]"):
        data.save(tmp_path / "d.npz")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match=r"rows \[3\]"):
        data.check_finite()


def test_simulate_command_checks_options_before_simulating(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["simulate", "source", "--n", "0", "--seed", "1", "--out", str(out)]) == 2
    assert "invprior simulate: error: --n must be a positive integer" in capsys.readouterr().err
    assert main(["simulate", "source", "--n", "4", "--seed", "-1", "--out", str(out)]) == 2
    assert "--seed must be a non-negative integer" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "d.npz"
    assert main(["simulate", "source", "--n", "4", "--seed", "1", "--out", str(bad)]) == 2
    assert "is a file, so the folder" in capsys.readouterr().err
    assert main(["simulate", "source", "--n", "4", "--seed", "1", "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    nested = tmp_path / "new" / "d.npz"
    assert main(["simulate", "source", "--n", "4", "--seed", "1", "--out", str(nested)]) == 0
    assert len(FieldDataset.load(nested)) == 4


def test_kl_modes_do_not_depend_on_lapack_rounding(monkeypatch):
    """Perturbing the kernel matrix at rounding level (another CPU or BLAS) changes no mode.

    Symmetric and antisymmetric eigenvectors have tied extreme entries and the square
    grid's modes (i, j) and (j, i) tie in eigenvalue: neither sign nor order may hinge on
    which of two equal numbers rounds larger.
    """
    grid = GridSpec((64, 64))
    _, reference = simulate_module._kl_modes(grid)
    eigh = np.linalg.eigh
    for trial in range(5):
        noise = np.random.default_rng(trial).normal(size=(64, 64)) * 1e-15
        monkeypatch.setattr(np.linalg, "eigh", lambda a, e=noise: eigh(a + (e + e.T) / 2))
        _, modes = simulate_module._kl_modes(grid)
        np.testing.assert_allclose(modes, reference, atol=1e-8)


def test_kl_modes_have_one_order_and_sign_on_every_machine():
    """The modes' values at two grid points, pinned: a swapped tie or a flipped sign fails.

    Modes 1 and 2, 4 and 5, 6 and 7 tie in eigenvalue on the square grid; before the order
    and signs were fixed, AVX-512 and AVX2 machines put the tied modes in different orders
    and with different signs, which changed the conductivity truth, data and oracle draws.
    """
    std, modes = simulate_module._kl_modes(GridSpec((64, 64)))
    np.testing.assert_allclose(
        std, [0.172843063138, 0.143269750492, 0.143269750492, 0.118756408464,
              0.105379952885, 0.105379952885, 0.087349525533, 0.087349525533],
        rtol=1e-9,
    )  # fmt: skip
    np.testing.assert_allclose(
        modes[:, 5, 11],
        [0.572740972258, 1.007775855203, 0.832969637143, 1.465665508652,
         1.192102048116, 0.629271682702, 1.733741531608, 1.107245402211],
        atol=1e-9,
    )  # fmt: skip
    np.testing.assert_allclose(
        modes[:, 40, 3],
        [0.695018989354, -0.457973683422, 1.283527147749, -0.845763446223,
         -0.389490183696, 1.667838105013, -0.719291461403, -1.099000130937],
        atol=1e-9,
    )  # fmt: skip
