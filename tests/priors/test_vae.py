# SPDX-License-Identifier: MIT
import math

import pytest
import torch

from invprior.priors import AuxVAE, BetaVAE, GridSpec, simulate_sources
from invprior.priors.train import VAETrainConfig, build_vae, fit_rec_shift, train_vae, vae_loss

GRID = GridSpec((16, 16))


def _aux(**kw):
    return AuxVAE(
        ("a", "b"),
        ("m", "1"),
        {"a": (0, 1), "b": (1, 2)},
        [0.5, 1.5],
        [0.3, 0.3],
        rec_dim=3,
        grid=GRID,
        channels=(4, 8),
        hidden=16,
        **kw,
    )


@pytest.mark.parametrize("make", [_aux, lambda: BetaVAE(4, grid=GRID, channels=(4, 8), hidden=16)])
def test_shapes_dtype_device_and_determinism(make, dtype, device):
    g = make().to(dtype=dtype, device=device).eval()
    x = torch.randn(2, 5, 16, 16, dtype=dtype, device=device)
    mu, logvar = g.encode(x)
    assert mu.shape == logvar.shape == (2, 5, g.aux_dim + g.rec_dim)
    za = torch.randn(2, 5, g.aux_dim, dtype=dtype, device=device)
    zr = torch.randn(2, 5, g.rec_dim, dtype=dtype, device=device)
    out = g.decode(za, zr)
    assert out.shape == (2, 5, 16, 16) and out.dtype == dtype and out.device.type == device.type
    torch.testing.assert_close(g.decode(za, zr), out, rtol=0, atol=0)
    # broadcasting of batch dimensions: one z_rec shared by many z_aux
    assert g.decode(za, zr[:1, :1]).shape == (2, 5, 16, 16)


def test_gradients_reach_latent(dtype):
    g = _aux().to(dtype).eval().requires_grad_(False)
    za = torch.zeros(3, 2, dtype=dtype, requires_grad=True)
    zr = torch.zeros(3, 3, dtype=dtype, requires_grad=True)
    g.decode(za, zr).pow(2).sum().backward()
    assert za.grad.abs().sum() > 0 and zr.grad.abs().sum() > 0


def test_conditional_prior_and_affine_map(dtype):
    g = _aux(tau=0.2).to(dtype)
    u = torch.tensor([[0.8, 1.2]], dtype=dtype)
    mean, var = g.prior(u, torch.zeros(1, 5, dtype=dtype))
    torch.testing.assert_close(mean, torch.tensor([[1.0, -1.0, 0, 0, 0]], dtype=dtype))
    torch.testing.assert_close(var, torch.tensor([[0.04, 0.04, 1, 1, 1]], dtype=dtype))
    torch.testing.assert_close(g.to_physical(g.to_latent(u)), u)


def test_input_checks():
    g = _aux()
    with pytest.raises(ValueError, match="z_aux"):
        g.decode(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(TypeError, match="generator.to"):
        g.decode(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="divisible"):
        AuxVAE(("a",), ("m",), {}, [0], [1], 2, grid=GridSpec((20, 20)), channels=(4, 4, 4))
    with pytest.raises(ValueError, match="BetaVAE"):
        AuxVAE((), (), {}, [], [], 2, grid=GRID)
    with pytest.raises(ValueError, match="model must be one of"):
        VAETrainConfig(model="vae")
    with pytest.raises(ValueError, match="batch_size"):
        VAETrainConfig(batch_size=4)


@pytest.mark.parametrize("model", ["auxvae", "betavae"])
def test_tiny_training_reduces_loss(model):
    data = simulate_sources(640, 0, GRID)
    cfg = VAETrainConfig(
        model=model,
        rec_dim=2,
        channels=(8, 16),
        hidden=32,
        epochs=6,
        batch_size=32,
        kl_warmup_epochs=1,
        patience=10,
        learning_rate=3e-3,
    )
    untrained = build_vae(cfg, data)
    x = torch.as_tensor(data.fields[:256])
    u = torch.as_tensor(data.aux[:256])
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(vae_loss(untrained, x, u, cfg.beta, cfg)["loss"])
    trained, hist = train_vae(cfg, data, progress=False, num_threads=1)
    torch.manual_seed(0)
    after = float(vae_loss(trained, x, u, cfg.beta, cfg)["loss"])
    assert after < 0.7 * before
    assert len(hist["val_loss"]) == 6 and all(math.isfinite(v) for v in hist["val_loss"])
    assert hist["val_loss"][-1] < hist["val_loss"][0]
    assert not trained.training and not any(p.requires_grad for p in trained.parameters())


def test_training_is_seeded():
    data = simulate_sources(200, 0, GRID)
    cfg = VAETrainConfig(
        rec_dim=1, channels=(4, 8), hidden=8, epochs=1, batch_size=32, kl_warmup_epochs=0
    )
    a, _ = train_vae(cfg, data, progress=False, num_threads=1)
    b, _ = train_vae(cfg, data, progress=False, num_threads=1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)


def test_rec_shift_is_exact_and_decorrelates(dtype):
    g = _aux().to(dtype).eval()
    x = torch.randn(400, 16, 16, dtype=dtype)
    mu0, logvar0 = g.encode(x)
    recon0 = g.decode_latent(mu0)
    fit_rec_shift(g, x)
    mu1, logvar1 = g.encode(x)
    torch.testing.assert_close(mu1[:, :2], mu0[:, :2])
    torch.testing.assert_close(logvar1, logvar0)
    torch.testing.assert_close(g.decode_latent(mu1), recon0)
    feats = g.rec_features(mu1[:, :2])[:, 1:]
    rec = mu1[:, 2:]
    cross = (feats - feats.mean(0)).T @ (rec - rec.mean(0)) / len(rec)
    assert cross.abs().max() < 1e-4


def test_positive_output_is_non_negative():
    g = BetaVAE(3, grid=GRID, channels=(4, 8), hidden=16, field_scale=0.5, positive=True)
    assert (g.decode(torch.zeros(50, 0), 5 * torch.randn(50, 3)) >= 0).all()


def test_simulate_and_train_commands(tmp_path, capsys):
    from invprior.cli import main
    from invprior.priors import load

    data = tmp_path / "d.npz"
    assert main(["simulate", "source", "--n", "160", "--seed", "4", "--out", str(data)]) == 0
    out = tmp_path / "g"
    args = ["train", "auxvae", "--data", str(data), "--out", str(out), "--epochs", "1"]
    args += ["--batch-size", "32", "--rec-dim", "2", "--eval-n", "40", "--no-progress"]
    args += ["--threads", "1"]
    assert main([*args, "--positive", "--kl-warmup-epochs", "0"]) == 0
    g = load(out)
    meta = g.metadata
    assert meta["data"]["seed"] == 4 and meta["metrics"]["heldout"]["n"] == 40
    assert meta["training"]["config"]["positive"] is True and g.positive
    assert set(meta["metrics"]) >= {"lds", "lds_all", "aux_corr_min", "ssim_median"}
