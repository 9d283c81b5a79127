# SPDX-License-Identifier: MIT
"""DL-CFM: the velocity U-Net, the generator's decode, Aux-VAE interface, checkpoints."""

import pytest
import torch

from invprior.priors import AuxVAE, DLCFMGenerator, GridSpec, VelocityUNet, load, save
from invprior.priors.flow import flow_matching_loss, integrate

GRID = GridSpec((6, 8))


def _generator(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    g = DLCFMGenerator(
        ("x0", "y0"),
        ("m", "m"),
        {"x0": (0.0, 1.0), "y0": (0.0, 2.0)},
        [0.5, 1.0],
        [0.3, 0.6],
        rec_dim=2,
        grid=GRID,
        channels=4,
        embed=8,
        field_offset=0.2,
        field_scale=1.5,
        **{"steps": 3, **kwargs},
    )
    return g.to(dtype)


@pytest.mark.parametrize("shape", [(6, 8), (3, 4), (5, 7)])
def test_unet_shapes_and_broadcasting(shape):
    net = VelocityUNet(3, channels=4, embed=8)
    x = torch.randn(2, 4, *shape)
    assert net(torch.tensor(0.3), x, torch.randn(3)).shape == x.shape
    assert net(torch.rand(2, 4), x, torch.randn(2, 4, 3)).shape == x.shape


def test_unet_loss_trains_on_grid():
    net = VelocityUNet(2, channels=4, embed=8)
    x, z = torch.randn(8, 6, 8), torch.randn(8, 2)
    loss = flow_matching_loss(net, x, z)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in net.parameters())


def test_decode_is_offset_plus_scale_times_flow():
    g = _generator()
    z_aux, z_rec = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    eps = torch.randn(4, *GRID.shape, dtype=torch.float64)
    flow = integrate(g.velocity, eps, torch.cat([z_aux, z_rec], -1), 3, "heun")
    torch.testing.assert_close(g.decode(z_aux, z_rec, eps), 0.2 + 1.5 * flow)
    zero = g.decode(z_aux, z_rec, torch.zeros_like(eps))
    torch.testing.assert_close(g.decode(z_aux, z_rec), zero)
    assert g.eps_shape == GRID.shape
    torch.testing.assert_close(g.standardise(g.decode(z_aux, z_rec, eps)), flow)


def test_gradcheck_decode_in_eps_and_z():
    g = _generator(method="midpoint", steps=2)
    args = [
        torch.randn(2, dtype=torch.float64, requires_grad=True),
        torch.randn(2, dtype=torch.float64, requires_grad=True),
        torch.randn(*GRID.shape, dtype=torch.float64, requires_grad=True),
    ]
    assert torch.autograd.gradcheck(lambda a, r, e: g.decode(a, r, e), args)


def test_from_auxvae_copies_the_latent_interface():
    vae = AuxVAE(("x0",), ("m",), {"x0": (0.0, 1.0)}, [0.5], [0.3], 2, GRID, (4,), 8, 0.2)
    g = DLCFMGenerator.from_auxvae(vae, channels=4, embed=8, steps=4, method="euler")
    assert (g.aux_names, g.aux_ranges, g.rec_dim, g.tau, g.grid) == (
        vae.aux_names,
        vae.aux_ranges,
        vae.rec_dim,
        vae.tau,
        vae.grid,
    )
    u = torch.tensor([[0.7]])
    torch.testing.assert_close(g.to_latent(u), vae.to_latent(u))


def test_checkpoint_round_trip(tmp_path):
    g = _generator(method="midpoint", steps=5)
    save(g, tmp_path / "flow")
    loaded = load(tmp_path / "flow").to(torch.float64)
    assert isinstance(loaded, DLCFMGenerator) and (loaded.steps, loaded.method) == (5, "midpoint")
    z = torch.randn(3, 2, dtype=torch.float64)
    eps = torch.randn(3, *GRID.shape, dtype=torch.float64)
    torch.testing.assert_close(loaded.decode(z, z, eps), g.decode(z, z, eps))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="method"):
        _generator(method="rk4")
    g = _generator()
    with pytest.raises(ValueError, match="eps must have shape"):
        g.decode(torch.zeros(2), torch.zeros(2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="z_aux"):
        g.decode(torch.zeros(3), torch.zeros(2))
