# SPDX-License-Identifier: MIT
import math

import pytest
import torch
from generators import tiny_hvae

from invprior.priors import GridSpec, HierarchicalVAE, simulate
from invprior.priors.losses import gaussian_kl
from invprior.priors.train import VAETrainConfig, build_vae, train_vae, vae_loss

GRID = GridSpec((16, 16))


def _hvae(latent_dim=2, hyper_dim=1):
    return tiny_hvae(latent_dim=latent_dim, hyper_dim=hyper_dim, channels=(4, 8)).double()


def _standard_normal_prior(g):
    """Zero the last layers: p(z | xi) = N(0, I) and r(xi | z) = N(0, I) for all inputs."""
    with torch.no_grad():
        for net in (g.conditional_prior_net, g.hyper_posterior_net):
            net[-1].weight.zero_()
            net[-1].bias.zero_()
    return g


def test_identity_like_prior_gives_the_gaussian_kl():
    g = _standard_normal_prior(_hvae(latent_dim=3, hyper_dim=2))
    z = torch.randn(6, 3, dtype=torch.float64)
    # log p(xi) - log r(xi | z) cancels exactly, so every weight is log N(z; 0, I)
    w = g.prior_log_weights(z, num_samples=4)
    exact = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(w, exact.expand(4, -1))
    mu = torch.randn(1, 3, dtype=torch.float64)
    logvar = 0.5 * torch.randn(1, 3, dtype=torch.float64)
    zs = mu + (0.5 * logvar).exp() * torch.randn(20000, 3, dtype=torch.float64)
    with torch.no_grad():
        kl = g.kl_bound(mu.expand_as(zs), logvar.expand_as(zs), zs)
    expected = float(gaussian_kl(mu, logvar, 0.0, 1.0))
    assert abs(float(kl.mean()) - expected) < 4 * float(kl.std()) / math.sqrt(len(kl))


def test_bound_below_quadrature_log_density():
    torch.manual_seed(1)
    g = _hvae(latent_dim=2, hyper_dim=1)
    z = torch.tensor([[0.3, -0.5], [1.5, 0.2], [-1.0, -1.0]], dtype=torch.float64)
    with torch.no_grad():
        xi = torch.linspace(-10, 10, 8001, dtype=torch.float64)[:, None]
        log_cond = g.conditional_prior(xi[:, None]).log_prob(z).sum(-1)  # (grid, 3)
        log_joint = log_cond - 0.5 * (xi.pow(2) + math.log(2 * math.pi))
        exact = torch.logsumexp(log_joint, 0) + math.log(float(xi[1] - xi[0]))
        w = g.prior_log_weights(z, num_samples=20000)
    bound = w.mean(0)
    importance = torch.logsumexp(w, 0) - math.log(len(w))
    assert (bound <= exact + 4 * w.std(0) / math.sqrt(len(w))).all()
    torch.testing.assert_close(importance, exact, atol=0.02, rtol=0)


def test_bound_trains_prior_and_auxiliary_posterior():
    g = _hvae()
    mu = torch.randn(5, 2, dtype=torch.float64)
    g.kl_bound(mu, torch.zeros_like(mu), mu).sum().backward()
    for net in (g.conditional_prior_net, g.hyper_posterior_net):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with pytest.raises(NotImplementedError, match="kl_bound"):
        g.conditional_prior_moments(None, mu)


def test_prior_sample_and_decode(dtype):
    g = tiny_hvae(hyper_hidden=32, channels=(4, 8)).to(dtype)
    z = g.prior_sample(7)
    assert z.shape == (7, 3) and z.dtype == dtype
    assert g.aux_dim == 0 and g.decode(z[:, :0], z).shape == (7, 16, 16)


def test_tiny_training_reduces_loss_with_recon_then_linear_beta():
    data = simulate("source", 256, 0, GRID)
    cfg = VAETrainConfig(
        model="hvae",
        rec_dim=2,
        hyper_dim=2,
        hyper_hidden=8,
        channels=(4, 8),
        hidden=16,
        epochs=3,
        batch_size=32,
        beta=1.0,
        kl_schedule="linear",
        recon_epochs=1,
        kl_warmup_epochs=2,
        learning_rate=3e-3,
    )
    x = torch.as_tensor(data.fields[:128])
    u = torch.as_tensor(data.aux[:128])
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(vae_loss(build_vae(cfg, data), x, u, cfg.beta, cfg)["loss"])
    trained, hist = train_vae(cfg, data, progress=False, num_threads=1)
    torch.manual_seed(0)
    after = float(vae_loss(trained, x, u, cfg.beta, cfg)["loss"])
    assert isinstance(trained, HierarchicalVAE) and after < before
    steps = (256 - 32) // 32  # the validation split holds out 32 samples
    expected = [0.0, (steps - 1) / steps / 2, (1 + (steps - 1) / steps) / 2]
    assert hist["beta"] == pytest.approx(expected)
