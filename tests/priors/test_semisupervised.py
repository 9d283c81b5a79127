# SPDX-License-Identifier: MIT
import math

import numpy as np
import pytest
import torch
from generators import two_scale_auxvae

from invprior.priors import GridSpec, SemiSupervisedVAE, load, save, simulate
from invprior.priors.semisupervised import label_nll, labelled_subset
from invprior.priors.train import VAETrainConfig, build_vae, train_vae, vae_loss
from invprior.priors.train.vae import _labelled_batch

GRID = GridSpec((16, 16))


def test_label_term_is_the_gaussian_negative_log_density(dtype):
    mu = torch.randn(4, 3, dtype=dtype)
    logvar = torch.randn(4, 3, dtype=dtype)
    a = torch.randn(4, 3, dtype=dtype)
    var = logvar.exp()
    closed = 0.5 * ((a - mu).pow(2) / var + torch.log(2 * math.pi * var)).sum(-1)
    torch.testing.assert_close(label_nll(mu, logvar, a), closed)
    ref = -torch.distributions.Normal(mu, var.sqrt()).log_prob(a).sum(-1)
    torch.testing.assert_close(label_nll(mu, logvar, a), ref)


def test_labelled_subset_is_seeded():
    mask = labelled_subset(1000, 0.01, seed=3)
    assert mask.dtype == bool and mask.shape == (1000,) and mask.sum() == 10
    np.testing.assert_array_equal(mask, labelled_subset(1000, 0.01, seed=3))
    assert not np.array_equal(mask, labelled_subset(1000, 0.01, seed=4))
    assert labelled_subset(50, 0.001, 0).sum() == 1 and labelled_subset(50, 0.0, 0).sum() == 0
    with pytest.raises(ValueError, match="fraction"):
        labelled_subset(10, 1.5, 0)


def test_loss_adds_gamma_times_the_mean_label_term_of_the_labelled_batch():
    g = two_scale_auxvae(SemiSupervisedVAE).double()
    cfg = VAETrainConfig(model="ssvae", gamma=3.0, beta=0.5)
    x = torch.randn(6, 16, 16, dtype=torch.float64)
    u = torch.rand(6, 2, dtype=torch.float64) + torch.tensor([0.0, 1.0], dtype=torch.float64)
    x_l, u_l = x[[1, 4]] + 0.5, u[[1, 4]].flip(0)
    torch.manual_seed(0)
    with torch.no_grad():
        unsup = vae_loss(g, x, u, cfg.beta, cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        semi = vae_loss(g, x, u, cfg.beta, cfg, (x_l, u_l))
        mu, logvar = g.encode(x)
        mu_l, logvar_l = g.encode(x_l)
    assert "label" not in unsup and unsup["explicitness_penalty"] == unsup["inter"] == 0
    nll = label_nll(mu_l[:, :2], logvar_l[:, :2], g.to_latent(u_l))
    torch.testing.assert_close(semi["label"], nll.mean())
    torch.testing.assert_close(semi["loss"] - unsup["loss"], 3.0 * semi["label"])
    # the KL is against N(0, I) whatever u is
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1).mean()
    torch.testing.assert_close(semi["kl"], kl)


def test_every_step_sees_the_labelled_samples():
    x, u = torch.arange(10.0)[:, None], -torch.arange(10.0)[:, None]
    assert _labelled_batch(x[:0], u[:0], 4) is None
    all_x, all_u = _labelled_batch(x[:3], u[:3], 4)
    assert torch.equal(all_x, x[:3]) and torch.equal(all_u, u[:3])
    some_x, some_u = _labelled_batch(x, u, 4)
    assert len(some_x) == 4 and len(set(some_x[:, 0].tolist())) == 4
    torch.testing.assert_close(some_u, -some_x)  # rows stay paired


def test_tiny_training_reduces_loss():
    data = simulate("source", 256, 0, GRID)
    cfg = VAETrainConfig(
        model="ssvae",
        rec_dim=2,
        channels=(4, 8),
        hidden=16,
        epochs=3,
        batch_size=32,
        labelled_fraction=0.25,
        gamma=1.0,
        kl_warmup_epochs=1,
        learning_rate=3e-3,
    )
    x = torch.as_tensor(data.fields[:128])
    u = torch.as_tensor(data.aux[:128])
    everyone = (x, u)
    torch.manual_seed(0)
    with torch.no_grad():
        before = vae_loss(build_vae(cfg, data), x, u, cfg.beta, cfg, everyone)
    trained, hist = train_vae(cfg, data, progress=False, num_threads=1)
    torch.manual_seed(0)
    after = vae_loss(trained, x, u, cfg.beta, cfg, everyone)
    assert isinstance(trained, SemiSupervisedVAE)
    assert after["loss"] < before["loss"] and after["label"] < before["label"]
    assert len(hist["val_loss"]) == 3 and "val_label" not in hist


def test_checkpoint_round_trip(tmp_path):
    g = two_scale_auxvae(SemiSupervisedVAE)
    save(g, tmp_path / "s")
    back = load(tmp_path / "s")
    assert type(back) is SemiSupervisedVAE and back.config() == g.config()
    for (k, a), b in zip(g.state_dict().items(), back.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    like = torch.zeros(3, 4)
    mean, var = back.conditional_prior_moments(None, like)
    assert (mean == 0).all() and (var == 1).all()


def test_train_command_for_ssvae_and_hvae(tmp_path):
    from invprior.cli import main

    path = tmp_path / "d.npz"
    assert main(["simulate", "source", "--n", "128", "--seed", "2", "--out", str(path)]) == 0
    args = ["--data", str(path), "--epochs", "1", "--batch-size", "32", "--rec-dim", "2"]
    args += ["--eval-n", "40", "--no-progress", "--threads", "1", "--recon-epochs", "0.5"]
    for model, extra in (("ssvae", ["--labelled-fraction", "0.1"]), ("hvae", ["--beta", "1"])):
        out_path = tmp_path / model
        assert main(["train", model, "--out", str(out_path), *args, *extra]) == 0
        g = load(out_path)
        assert g.metadata["training"]["config"]["model"] == model
        assert "lds_all" in g.metadata["metrics"]
