# SPDX-License-Identifier: MIT
"""Linearised-prior diagnostics against dense closed forms on the linear generator."""

import arviz_base
import numpy as np
import pytest
import torch
import xarray as xr
from linear_gaussian import LinearGenerator, make_problem

from invprior.block_correlation import block_correlation, plot_block_correlation
from invprior.linearised import induced_covariance, plot_modes, plot_std_split, write_figures
from invprior.model import DisentangledPrior
from invprior.priors import load

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def problem():
    return make_problem(aux_dim=2, rec_dim=3)


def _dense(gen, cov):
    """``A`` ``(n, m)`` and the dense ``C = A Sigma A^T`` of the linear generator."""
    a = torch.cat([gen.a_aux, gen.a_rec], dim=1).numpy()
    return a, a @ cov @ a.T


def _random_spd(m, seed=0):
    b = np.random.default_rng(seed).normal(size=(m, m))
    return b @ b.T / m + 0.1 * np.eye(m)


def test_jacobian_and_mean_of_linear_generator_are_exact(problem):
    gen = problem.prior.generator
    z0 = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    lin = induced_covariance(problem.prior, z0)
    a, _ = _dense(gen, np.eye(5))
    np.testing.assert_allclose(lin.jacobian, a, rtol=0, atol=1e-14)
    np.testing.assert_allclose(lin.mean, gen.decode(z0[:2], z0[2:]).numpy(), atol=1e-14)
    assert lin.labels == ("u0", "u1", "z_rec[0]", "z_rec[1]", "z_rec[2]")
    np.testing.assert_array_equal(lin.latent, z0.numpy())


def test_default_sigma_z_is_the_prior_second_moment(problem):
    prior, gen = problem.prior, problem.prior.generator
    lin = induced_covariance(prior, torch.zeros(5, dtype=torch.float64))
    sd_u = np.array([prior.aux_priors[n].scale.item() for n in gen.aux_names])
    var_aux = (sd_u / gen.aux_std.numpy()) ** 2 + prior.tau**2
    np.testing.assert_allclose(lin.sigma_z, np.diag([*var_aux, 1.0, 1.0, 1.0]), rtol=1e-14)


def test_bare_generator_gets_uniform_priors_and_default_tau():
    gen = LinearGenerator(2, 1, torch.float64)
    lin = induced_covariance(gen, np.zeros(3))
    var_u = (3.0 - -2.0) ** 2 / 12  # Uniform(-2, 3), the training range
    expected = var_u / gen.aux_std.numpy() ** 2 + DisentangledPrior(gen).tau ** 2
    np.testing.assert_allclose(np.diag(lin.sigma_z)[:2], expected, rtol=1e-12)


def test_sampler_coordinates_give_the_same_covariance(problem):
    """Linearising in (u, e, z_rec) gives the same C, since a(u) is affine."""
    prior, gen = problem.prior, problem.prior.generator
    lin = induced_covariance(prior, np.zeros(5))
    s = gen.aux_std.numpy()
    k = np.hstack([gen.a_aux.numpy() / s, prior.tau * gen.a_aux.numpy(), gen.a_rec.numpy()])
    var_u = [prior.aux_priors[n].variance.item() for n in gen.aux_names]
    c = k @ np.diag([*var_u, 1, 1, 1, 1, 1]) @ k.T
    np.testing.assert_allclose(lin.std.reshape(-1) ** 2, np.diag(c), rtol=1e-12)


@pytest.mark.parametrize("full", [False, True], ids=["diagonal", "full"])
def test_eigenpairs_and_std_match_dense_covariance(problem, full):
    gen = problem.prior.generator
    cov = _random_spd(5) if full else np.diag([0.5, 2.0, 1.0, 0.3, 1.7])
    lin = induced_covariance(problem.prior, np.zeros(5), sigma_z=cov)
    _, c = _dense(gen, cov)
    lam, vec = np.linalg.eigh(c)
    lam, vec = lam[::-1][:5], vec[:, ::-1][:, :5]
    np.testing.assert_allclose(lin.eigenvalues, lam, rtol=1e-10)
    modes = lin.modes.reshape(5, -1)
    np.testing.assert_allclose(np.abs(np.sum(modes * vec.T, axis=1)), 1.0, rtol=1e-10)
    np.testing.assert_allclose((modes.T * lin.eigenvalues) @ modes, c, atol=1e-10)
    np.testing.assert_allclose(lin.std.reshape(-1), np.sqrt(np.diag(c)), rtol=1e-12)
    np.testing.assert_allclose(lin.variance_share, lam / np.trace(c), rtol=1e-10)
    np.testing.assert_allclose(np.square(lin.loadings).sum(1), 1.0, rtol=1e-12)
    assert np.all(modes[np.arange(5), np.abs(modes).argmax(1)] > 0)


@pytest.mark.parametrize("full", [False, True], ids=["block-diagonal", "full"])
def test_variance_split_adds_up(problem, full):
    gen = problem.prior.generator
    cov = _random_spd(5, seed=1)
    if not full:
        cov[:2, 2:] = cov[2:, :2] = 0.0
    lin = induced_covariance(problem.prior, np.ones(5), sigma_z=cov)
    a_aux, a_rec = gen.a_aux.numpy(), gen.a_rec.numpy()
    named = np.diag(a_aux @ cov[:2, :2] @ a_aux.T)
    residual = np.diag(a_rec @ cov[2:, 2:] @ a_rec.T)
    cross = 2 * np.diag(a_aux @ cov[:2, 2:] @ a_rec.T)
    np.testing.assert_allclose(lin.named_var.reshape(-1), named, rtol=1e-12)
    np.testing.assert_allclose(lin.residual_var.reshape(-1), residual, rtol=1e-12)
    np.testing.assert_allclose(lin.cross_var.reshape(-1), cross, atol=1e-12)
    total = lin.named_var + lin.residual_var + lin.cross_var
    np.testing.assert_allclose(total, lin.std**2, rtol=1e-12)
    assert sum(lin.block_shares.values()) == pytest.approx(1.0)
    assert (lin.block_shares["cross"] == 0.0) == (not full)


def test_latent_mapping_equals_vector(problem):
    z0 = torch.arange(5, dtype=torch.float64) / 5
    sites = {"z_aux": z0[:2], "z_rec": z0[2:], "u0": torch.tensor(0.0)}
    a, b = induced_covariance(problem.prior, sites), induced_covariance(problem.prior, z0)
    np.testing.assert_array_equal(a.jacobian, b.jacobian)
    np.testing.assert_array_equal(a.mean, b.mean)


@pytest.mark.parametrize(
    ("latent", "sigma_z", "match"),
    [
        (np.zeros(4), None, r"shape \(4,\).*d \+ r = 2 \+ 3 = 5"),
        (np.zeros((2, 5)), None, r"one latent point of shape \(5,\)"),
        ({"z_aux": np.zeros(2)}, None, r"no \['z_rec'\]"),
        ({"z_rec": np.zeros(3)}, None, r"no \['z_aux'\]"),
        ({"z_aux": np.zeros(3), "z_rec": np.zeros(3)}, None, r"shapes \(3,\) and \(3,\)"),
        (np.array([0, 0, np.nan, 0, 0]), None, "NaN"),
        (np.zeros(5), np.ones(4), r"sigma_z has shape \(4,\)"),
        (np.zeros(5), np.full(5, np.nan), "NaN"),
        (np.zeros(5), np.triu(np.ones((5, 5))), "symmetric"),
        (np.zeros(5), np.diag([1.0, -1.0, 1.0, 1.0, 1.0]), "positive semi-definite"),
    ],
)
def test_induced_covariance_rejects_bad_input(problem, latent, sigma_z, match):
    with pytest.raises(ValueError, match=match):
        induced_covariance(problem.prior, latent, sigma_z=sigma_z)


def test_induced_covariance_needs_finite_prior_variance():
    gen = LinearGenerator(1, 1, torch.float64)
    cauchy = torch.distributions.Cauchy(torch.tensor(0.0), torch.tensor(1.0))
    prior = DisentangledPrior(gen, {"u0": cauchy})
    with pytest.raises(ValueError, match="pass sigma_z explicitly"):
        induced_covariance(prior, np.zeros(2))
    assert induced_covariance(prior, np.zeros(2), sigma_z=np.ones(2)).std.shape == (3, 4)
    with pytest.raises(TypeError, match="DisentangledPrior or"):
        induced_covariance(torch.nn.Linear(2, 2), np.zeros(2))


def _correlated_draws(cross, num_chains=4, num_draws=5000, seed=0):
    """Draws ``(chain, draw, .)`` with unit variances and the given cross-correlation."""
    d, r = cross.shape
    cov = np.eye(d + r)
    cov[:d, d:], cov[d:, :d] = cross, cross.T
    cov[0, 1] = cov[1, 0] = 0.3  # within-block correlation must not leak into the cross block
    x = np.random.default_rng(seed).normal(size=(num_chains, num_draws, d + r))
    x = 2.0 + 3.0 * x @ np.linalg.cholesky(cov).T  # location and scale do not matter
    return {"z_aux": torch.from_numpy(x[..., :d]), "z_rec": torch.from_numpy(x[..., d:])}


def test_block_correlation_recovers_known_cross_block():
    cross = np.array([[0.5, 0.0, -0.2], [0.0, 0.3, 0.1]])
    corr = block_correlation(_correlated_draws(cross), aux_names=["x0", "y0"])
    n = corr.num_draws
    assert n == 20000
    tol = 5 * (1 - cross**2) / np.sqrt(n)  # 5 standard errors of a sample correlation
    assert np.all(np.abs(corr.cross - cross) < tol)
    assert corr.rms == pytest.approx(np.linalg.norm(cross) / np.sqrt(6), abs=5 / np.sqrt(n))
    assert corr.max_abs == pytest.approx(0.5, abs=5 / np.sqrt(n))
    assert corr.aux_labels == ("x0", "y0")
    assert corr.rec_labels == ("z_rec[0]", "z_rec[1]", "z_rec[2]")


def test_block_correlation_is_near_zero_for_independent_blocks():
    corr = block_correlation(_correlated_draws(np.zeros((2, 3))))
    assert corr.rms < 2 / np.sqrt(corr.num_draws)
    assert corr.max_abs < 4 / np.sqrt(corr.num_draws)
    assert corr.aux_labels == ("z_aux[0]", "z_aux[1]")


def test_block_correlation_reads_a_datatree():
    cross = np.array([[0.4, -0.1], [0.2, 0.0]])
    draws = _correlated_draws(cross, num_chains=2, num_draws=500)
    posterior = {k: v.numpy() for k, v in draws.items()}
    tree = arviz_base.from_dict(
        {"posterior": posterior},
        dims={"z_aux": ["aux"], "z_rec": ["rec"]},
        coords={"aux": ["x0", "y0"]},
    )
    from_tree, from_dict = block_correlation(tree), block_correlation(draws)
    np.testing.assert_allclose(from_tree.cross, from_dict.cross, rtol=1e-12)
    assert from_tree.aux_labels == ("x0", "y0")
    with pytest.raises(ValueError, match="no posterior group"):
        block_correlation(xr.DataTree())


def _draws(**shapes):
    return {k: np.random.default_rng(0).normal(size=s) for k, s in shapes.items()}


@pytest.mark.parametrize(
    ("draws", "kwargs", "match"),
    [
        (_draws(z_rec=(2, 50, 3)), {}, r"no \['z_aux'\]"),
        (_draws(z_aux=(2, 50, 2)), {}, r"no \['z_rec'\]"),
        (_draws(z_aux=(2, 50, 2), z_rec=(2, 40, 3)), {}, "same sample shape"),
        (_draws(z_aux=(2,), z_rec=(3,)), {}, "same sample shape"),
        (_draws(z_aux=(1, 5, 2), z_rec=(1, 5, 3)), {}, "at least 10 draws"),
        (_draws(z_aux=(50, 0), z_rec=(50, 3)), {}, "d >= 1"),
        (_draws(z_aux=(50, 2), z_rec=(50, 3)), {"aux_names": ["x0"]}, "1 aux names"),
    ],
)
def test_block_correlation_rejects_bad_input(draws, kwargs, match):
    with pytest.raises(ValueError, match=match):
        block_correlation(draws, **kwargs)


def test_block_correlation_rejects_nan_and_constant_draws():
    draws = _draws(z_aux=(2, 50, 2), z_rec=(2, 50, 3))
    draws["z_aux"][1, 7, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        block_correlation(draws)
    draws["z_aux"][1, 7, 0] = 0.0
    draws["z_rec"][..., 2] = 1.0
    with pytest.raises(ValueError, match=r"constant draws of \['z_rec\[2\]'\]"):
        block_correlation(draws)
    with pytest.raises(TypeError, match="mapping of draws"):
        block_correlation(np.zeros((10, 5)))


def test_plots_write_png_files(problem, tmp_path):
    lin = induced_covariance(problem.prior, np.zeros(5))
    corr = block_correlation(_correlated_draws(np.full((2, 3), 0.2), num_draws=100))
    written = write_figures(tmp_path / "figs", lin, num_modes=9)
    assert set(written) == {"linearised_modes", "linearised_std"}
    for path in written.values():
        assert path.read_bytes()[:8] == PNG
    assert len(plot_modes(lin, num_modes=2).axes) == 2 * 3  # 3 images, each with a colour bar
    assert len(plot_std_split(lin).axes) == 6
    assert len(plot_block_correlation(corr).axes) == 2
    with pytest.raises(ValueError, match="num_modes must be at least 1"):
        plot_modes(lin, num_modes=0)


def test_shipped_generator_jacobian_is_finite():
    gen = load("source-auxvae")
    m = gen.aux_dim + gen.rec_dim
    lin = induced_covariance(gen, torch.zeros(m))
    ny, nx = gen.grid.shape
    assert lin.jacobian.shape == (ny * nx, m) == (4096, gen.aux_dim + gen.rec_dim)
    assert np.isfinite(lin.jacobian).all() and np.isfinite(lin.eigenvalues).all()
    assert lin.variance_share.sum() == pytest.approx(1.0)
    assert sum(lin.block_shares.values()) == pytest.approx(1.0)
