# SPDX-License-Identifier: MIT
"""SimulatorGenerator: the source simulator's prior as a generator, and its tau = 0 prior."""

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine

from invprior.model import DisentangledPrior
from invprior.priors import GridSpec, SimulatorGenerator
from invprior.priors.simulate import SOURCE_PARAMETERS, simulate_sources
from invprior.sites import AUX_NOISE, FIELD, Z_AUX, Z_REC

GRID = GridSpec((10, 12), ((1.0, -0.5), (3.0, 0.5)))
NAMED = ("x0", "y0", "amplitude", "width")


def _factors(gen, n, seed=0):
    """The factors of ``simulate_sources`` on the generator's grid as tensors, and the data."""
    data = simulate_sources(n, seed, gen.grid)
    return {k: torch.as_tensor(v) for k, v in data.factors.items()}, data


def test_names_ranges_and_declared_attributes():
    gen = SimulatorGenerator(GRID)
    data = simulate_sources(1, 0, GRID)
    assert gen.aux_names == NAMED and gen.aux_units == ("m", "m", "1", "m")
    assert gen.rec_names == tuple(k for k in SOURCE_PARAMETERS if k not in NAMED)
    assert (gen.aux_dim, gen.rec_dim, gen.tau, gen.eps_shape) == (4, 10, 0.0, None)
    assert gen.aux_ranges == {k: data.ranges[k] for k in NAMED}
    assert gen.rec_ranges == {k: data.ranges[k] for k in gen.rec_names}
    assert gen.grid == GRID and gen.aux_mean.dtype == torch.float64
    u = torch.tensor([[2.0, 0.1, 1.5, 0.2]], dtype=torch.float64)
    assert torch.equal(gen.to_latent(u), u) and torch.equal(gen.to_physical(u), u)


def test_decode_is_the_simulator():
    gen = SimulatorGenerator(GRID)
    factors, data = _factors(gen, 5, seed=3)
    z_aux, z_rec = gen.latents(factors)
    assert z_aux.shape == (5, 4) and z_rec.shape == (5, 10)
    back = gen.factors(z_aux, z_rec)
    assert list(back) == list(SOURCE_PARAMETERS)
    for k, v in factors.items():
        torch.testing.assert_close(back[k], v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gen.decode(z_aux, z_rec).numpy(), data.fields, rtol=1e-6, atol=1e-7)


def test_probit_coordinates_map_onto_the_ranges():
    gen = SimulatorGenerator(GRID)
    z = torch.tensor([0.0, -40.0, 40.0], dtype=torch.float64)[:, None].expand(3, 10)
    ranges = simulate_sources(1, 0, GRID).ranges
    factors = gen.factors(torch.zeros(3, 4, dtype=torch.float64), z)
    for k in gen.rec_names:
        lo, hi = ranges[k]
        np.testing.assert_allclose(factors[k].numpy(), [(lo + hi) / 2, lo, hi], atol=1e-12)


def test_decode_shapes_dtype_and_broadcasting():
    gen = SimulatorGenerator(GRID)
    factors, _ = _factors(gen, 6)
    z_aux, z_rec = gen.latents(factors)
    one = gen.decode(z_aux[0], z_rec[0])
    assert one.shape == GRID.shape and one.dtype == torch.float64
    grid = gen.decode(z_aux.reshape(2, 3, 4), z_rec.reshape(2, 3, 10))
    assert grid.shape == (2, 3, *GRID.shape)
    torch.testing.assert_close(grid[1, 2], gen.decode(z_aux[5:], z_rec[5:])[0])
    shared = gen.decode(z_aux[0], z_rec[:3])  # one named block, three residual blocks
    assert shared.shape == (3, *GRID.shape)
    torch.testing.assert_close(shared[2], gen.decode(z_aux[0], z_rec[2]))
    single = gen.to(torch.float32).decode(z_aux.float(), z_rec.float())
    assert single.dtype == torch.float32 and gen.rec_low.dtype == torch.float32


def test_decode_gradients_in_float64():
    gen = SimulatorGenerator(GridSpec((5, 6)))
    factors, _ = _factors(gen, 2, seed=1)
    z_aux, z_rec = (z.detach().requires_grad_(True) for z in gen.latents(factors))
    assert torch.autograd.gradcheck(gen.decode, (z_aux, z_rec))


def test_tau_zero_prior_has_no_link_noise_and_draws_the_simulators_factors():
    gen = SimulatorGenerator(GRID)
    prior = DisentangledPrior(gen)
    assert prior.tau == 0.0 and list(prior.latent_shapes) == [*NAMED, Z_REC]
    with pyro.plate("draws", 4000):
        sites = poutine.trace(prior).get_trace().nodes
    assert AUX_NOISE not in sites
    u = torch.stack([sites[n]["value"] for n in NAMED], -1)
    assert torch.equal(sites[Z_AUX]["value"], u)
    factors = gen.factors(u, sites[Z_REC]["value"])
    torch.testing.assert_close(sites[FIELD]["value"], gen.decode(u, sites[Z_REC]["value"]))
    for k, (lo, hi) in simulate_sources(1, 0, GRID).ranges.items():
        unit = ((factors[k] - lo) / (hi - lo)).numpy()  # Uniform(0, 1): mean 1/2, var 1/12
        assert unit.min() >= 0 and unit.max() <= 1
        assert abs(unit.mean() - 0.5) < 4 * (1 / 12 / 4000) ** 0.5
        assert abs(unit.var() - 1 / 12) < 0.01
    latent = {n: sites[n]["value"] for n in prior.latent_shapes}
    expected = sum(prior.aux_distribution(n).log_prob(latent[n]) for n in NAMED)
    expected = expected - 0.5 * (latent[Z_REC].square().sum(-1) + 10 * np.log(2 * np.pi))
    torch.testing.assert_close(prior.log_prob(latent), expected)
    torch.testing.assert_close(prior.field_of(latent), sites[FIELD]["value"])


def test_bad_grid_is_refused():
    with pytest.raises(TypeError, match="GridSpec"):
        SimulatorGenerator((10, 12))
