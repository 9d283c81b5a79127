# SPDX-License-Identifier: MIT
import numpy as np
import pytest
import torch

from invprior.priors import GaussianFieldGenerator, GridSpec

GRID = GridSpec((8, 8))


def _matern15(d, ell):
    s = np.sqrt(3) * d / ell
    return (1 + s) * np.exp(-s)


def test_matern_full_rank_reproduces_kernel():
    g = GaussianFieldGenerator.matern(GRID, variance=2.0, length_scale=0.3, nu=1.5, rank=64)
    t = np.linspace(0, 1, 8)
    X, Y = np.meshgrid(t, t)
    pts = np.stack([X.ravel(), Y.ravel()], 1)
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    np.testing.assert_allclose(g.covariance.double().numpy(), 2.0 * _matern15(d, 0.3), atol=1e-5)


def test_from_samples_reproduces_covariance(dtype):
    rng = np.random.default_rng(0)
    true = GaussianFieldGenerator.matern(GRID, 1.0, 0.4, nu=2.5, rank=6).double()
    z = torch.as_tensor(rng.standard_normal((20000, 6)))
    fields = (true.decode(z[:, :0], z) + 3.0).to(dtype)
    g = GaussianFieldGenerator.from_samples(fields, variance_fraction=0.999, grid=GRID)
    assert g.rec_dim <= 6 and g.mean.dtype == dtype
    cov_true = true.covariance.numpy()
    err = np.abs(g.covariance.double().numpy() - cov_true).max() / np.abs(cov_true).max()
    assert err < 0.05
    np.testing.assert_allclose(g.mean.double().numpy(), 3.0, atol=0.05)


def test_from_few_samples_keeps_their_covariance():
    # n < ny * nx: the Gram-matrix route; with every mode kept, C is the sample covariance.
    rng = np.random.default_rng(1)
    fields = rng.standard_normal((30, *GRID.shape))
    g = GaussianFieldGenerator.from_samples(fields, variance_fraction=1.0, grid=GRID)
    flat = fields.reshape(30, -1)
    assert g.rec_dim == 29
    np.testing.assert_allclose(g.covariance.numpy(), np.cov(flat.T), atol=1e-12)
    np.testing.assert_allclose(g.mean.numpy().ravel(), flat.mean(0), atol=1e-12)


def test_samples_have_the_prior_covariance():
    g = GaussianFieldGenerator.matern(GRID, 1.0, 0.25, nu=1.5, variance_fraction=0.99).double()
    z = torch.randn(40000, g.rec_dim, dtype=torch.float64)
    x = g.decode(z[:, :0], z).reshape(len(z), -1)
    emp = torch.cov(x.T)
    assert (emp - g.covariance).abs().max() < 0.05


def test_decode_refuses_a_latent_of_another_size():
    g = GaussianFieldGenerator.matern(GRID, 1.0, 0.3, rank=5)
    assert g.aux_dim == 0 and g.aux_names == ()
    zr = torch.randn(3, 2, 5)
    with pytest.raises(ValueError, match="z_rec"):
        g.decode(zr[..., :0], zr[..., :4])


def test_bad_arguments():
    with pytest.raises(ValueError, match="nu"):
        GaussianFieldGenerator.matern(GRID, 1.0, 0.3, nu=0.5)
    with pytest.raises(ValueError, match="variance_fraction"):
        GaussianFieldGenerator.from_samples(np.zeros((4, 8, 8)), 0.0, GRID)
