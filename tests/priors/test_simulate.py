# SPDX-License-Identifier: MIT
import numpy as np
import pytest

from invprior.priors import (
    FieldDataset,
    GridSpec,
    simulate,
    simulate_conductivity,
    simulate_sources,
)
from invprior.priors.simulate import CONDUCTIVITY_PARAMETERS, SOURCE_PARAMETERS, source_fields

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


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate_sources(0, 1)
    with pytest.raises(ValueError, match="unknown simulator"):
        simulate("darcy", 1, 1)
    with pytest.raises(TypeError, match="GridSpec"):
        simulate_sources(1, 1, (64, 64))
