# SPDX-License-Identifier: MIT
"""DL-CFM: the velocity U-Net, the generator's decode, Aux-VAE interface, checkpoints."""

import pytest
import torch
from generators import spread_velocity, tiny_flow

from invprior.priors import AuxVAE, DLCFMGenerator, GridSpec, VelocityUNet, load, save
from invprior.priors.flow import flow_matching_loss, integrate

GRID = GridSpec((8, 8))


def _base():
    # an 8 x 8 grid and unequal ranges: the numbers these tests check were taken on it
    torch.manual_seed(1)
    ranges = {"x0": (0.0, 1.0), "y0": (0.0, 2.0)}
    return AuxVAE(("x0", "y0"), ("m", "m"), ranges, [0.5, 1.0], [0.3, 0.6], 2, GRID, (4,), 8)


def _generator(dtype=torch.float64, **kwargs):
    base = _base()
    torch.manual_seed(0)
    return spread_velocity(tiny_flow(base=base, **{"steps": 3, **kwargs})).to(dtype)


@pytest.mark.parametrize("shape", [(6, 8), (3, 4), (5, 7)])
def test_unet_shapes_and_broadcasting(shape):
    net = VelocityUNet(3, channels=4, embed=8)
    x = torch.randn(2, 4, *shape)
    assert net(torch.tensor(0.3), x, torch.randn(3)).shape == x.shape
    assert net(torch.rand(2, 4), x, torch.randn(2, 4, 3)).shape == x.shape


def test_unet_context_channels():
    net = VelocityUNet(2, channels=4, embed=8, context=1)
    x, z = torch.randn(8, 6, 8), torch.randn(8, 2)
    context = torch.randn(8, 1, 6, 8)
    loss = flow_matching_loss(lambda t, r, z: net(t, r, z, context), x, z)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in net.parameters())
    assert not torch.equal(
        net(torch.tensor(0.5), x, z, context), net(torch.tensor(0.5), x, z, 0 * context)
    )
    with pytest.raises(ValueError, match="1 context"):
        net(torch.tensor(0.5), x, z)


def test_decode_is_decoder_mean_plus_scaled_residual_flow():
    g = _generator()
    z_aux, z_rec = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    eps = torch.randn(4, *GRID.shape, dtype=torch.float64)
    z = torch.cat([z_aux, z_rec], -1)
    mean = g.base.decode(z_aux, z_rec)
    context = (mean - g.base.field_offset) / g.base.field_scale
    flow = integrate(lambda t, r, z: g.velocity(t, r, z, context[:, None]), eps, z, 3, g.method)
    torch.testing.assert_close(g.decode(z_aux, z_rec, eps), mean + 0.5 * flow)
    assert not torch.allclose(flow, torch.zeros_like(flow))
    zero = g.decode(z_aux, z_rec, torch.zeros_like(eps))
    torch.testing.assert_close(g.decode(z_aux, z_rec), zero)
    assert g.eps_shape == GRID.shape


def test_training_pairs_reconstruct_the_fields():
    g = _generator()
    x = torch.rand(5, *GRID.shape, dtype=torch.float64)
    r, mu, context = g.training_pairs(x)
    torch.testing.assert_close(mu, g.encode(x)[0])
    mean = g.base.decode_latent(mu)
    torch.testing.assert_close(mean + 0.5 * r, x)
    torch.testing.assert_close(context[:, 0], (mean - g.base.field_offset) / g.base.field_scale)


def test_gradcheck_decode_in_eps_and_z():
    g = _generator(method="midpoint", steps=2)
    args = [
        torch.randn(2, dtype=torch.float64, requires_grad=True),
        torch.randn(2, dtype=torch.float64, requires_grad=True),
        torch.randn(*GRID.shape, dtype=torch.float64, requires_grad=True),
    ]
    assert torch.autograd.gradcheck(lambda a, r, e: g.decode(a, r, e), args)


def test_latent_interface_and_encoder_are_the_base_auxvae():
    g = _generator()
    vae = g.base
    assert (g.aux_names, g.aux_ranges, g.rec_dim, g.tau, g.grid) == (
        vae.aux_names,
        vae.aux_ranges,
        vae.rec_dim,
        vae.tau,
        vae.grid,
    )
    u = torch.tensor([[0.7, 1.2]], dtype=torch.float64)
    torch.testing.assert_close(g.to_latent(u), vae.to_latent(u))
    assert not any(p.requires_grad for p in vae.parameters())
    assert not g.train().base.training and g.velocity.training


def test_checkpoint_round_trip(tmp_path):
    g = _generator(method="midpoint", steps=5)
    save(g, tmp_path / "flow")
    loaded = load(tmp_path / "flow").to(torch.float64)
    assert isinstance(loaded, DLCFMGenerator) and (loaded.steps, loaded.method) == (5, "midpoint")
    z = torch.randn(3, 2, dtype=torch.float64)
    assert loaded.base.config() == g.base.config()
    eps = torch.randn(3, *GRID.shape, dtype=torch.float64)
    torch.testing.assert_close(loaded.decode(z, z, eps), g.decode(z, z, eps))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="method"):
        _generator(method="rk4")
    with pytest.raises(ValueError, match="residual_scale"):
        DLCFMGenerator(_base(), residual_scale=0.0)
    with pytest.raises(TypeError, match="AuxVAE"):
        DLCFMGenerator(object())
    g = _generator()
    with pytest.raises(ValueError, match="eps must have shape"):
        g.decode(torch.zeros(2), torch.zeros(2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="z_aux"):
        g.decode(torch.zeros(3), torch.zeros(2))
