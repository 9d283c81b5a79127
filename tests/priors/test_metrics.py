# SPDX-License-Identifier: MIT
"""Disentanglement metrics against codes with known answers."""

import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group

from invprior.priors import Generator, GridSpec
from invprior.priors.metrics import (
    abs_correlation,
    dci,
    evaluate_generator,
    explicitness,
    lds,
    lds_ceiling,
    lds_scores,
    mig,
    perturbation_importance,
    projection_errors,
    residual_readback_sd,
    sap,
    ssim_scores,
)
from invprior.priors.simulate import FieldDataset
from invprior.priors.train import evaluate_vae

N = 1500
K = 4
GRID = GridSpec((16, 16))


def lds_floor(n_latents, n):
    """A generous lower bound for a perfect code: three times the expected |corr| of noise."""
    return 1 / (1 + 3 * (n_latents - 1) * np.sqrt(2 / (np.pi * n)))


class OrthonormalGenerator(Generator):
    """x = mean + z W on a small grid, with the exact inverse as encoder (orthonormal W)."""

    def __init__(self, names=("a", "b"), rec_dim=2, grid=GRID, rec_scale=1.0):
        super().__init__()
        d = len(names)
        self._init_aux(
            names,
            ("1",) * d,
            {k: (0.0, 1.0) for k in names},
            torch.full((d,), 0.5, dtype=torch.float64),
            torch.full((d,), 0.3, dtype=torch.float64),
        )
        self.rec_dim = rec_dim
        self.grid = grid
        ny, nx = grid.shape
        g = torch.Generator().manual_seed(3)
        q, _ = torch.linalg.qr(torch.randn(ny * nx, d + rec_dim, generator=g, dtype=torch.float64))
        basis = q.T.clone() * 10.0
        basis[d:] *= rec_scale
        self.register_buffer("basis", basis)
        self.register_buffer("mean", torch.linspace(0, 1, ny * nx, dtype=torch.float64))

    def decode(self, z_aux, z_rec, eps=None):
        self._refuse_eps(eps)
        z = torch.cat([z_aux, z_rec], dim=-1)
        return (self.mean + z @ self.basis).reshape(*z.shape[:-1], *self.grid.shape)

    def encode(self, x):
        flat = x.reshape(*x.shape[:-2], -1) - self.mean
        mu = flat @ self.basis.T / 100.0
        return mu, torch.zeros_like(mu)


def _orthogonal_factors(n=200, k=K, seed=0):
    """Centred columns with exactly zero sample correlation and equal norms."""
    x = np.random.default_rng(seed).uniform(size=(n, k))
    q, _ = np.linalg.qr(x - x.mean(axis=0))
    return q * np.sqrt(n)


@pytest.fixture
def factors():
    return np.random.default_rng(1).uniform(size=(N, K))


def test_identity_on_uncorrelated_factors_is_exactly_perfect():
    u = _orthogonal_factors()
    assert lds(u, u) == pytest.approx(1.0, abs=1e-12)
    assert sap(u, u) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(explicitness(u, u), 1.0, atol=1e-12)
    np.testing.assert_allclose(abs_correlation(u, u), np.eye(K), atol=1e-12)


def test_closed_form_mixture():
    # z1 = u1 + u2, z2 = u2 with orthogonal equal-norm u: |corr| = [[1/sqrt2, 0], [1/sqrt2, 1]]
    u = _orthogonal_factors(k=2)
    z = np.c_[u[:, 0] + u[:, 1], u[:, 1]]
    c = 1 / np.sqrt(2)
    np.testing.assert_allclose(abs_correlation(u, z), [[c, 0], [c, 1]], atol=1e-12)
    assert lds(u, z) == pytest.approx((1 + 1 / (1 + c)) / 2, abs=1e-12)
    assert sap(u, z) == pytest.approx(0.5, abs=1e-12)


def test_invariant_to_permutation_sign_and_scale(factors):
    z = factors + 0.3 * np.random.default_rng(2).normal(size=factors.shape)
    perm = [2, 0, 3, 1]
    z2 = -3.0 * z[:, perm] + 7.0
    assert lds(factors, z2) == pytest.approx(lds(factors, z), abs=1e-12)
    assert sap(factors, z2) == pytest.approx(sap(factors, z), abs=1e-12)
    assert mig(factors, z2) == pytest.approx(mig(factors, z), abs=1e-12)


def test_identity_rotation_and_noise_rank_as_expected(factors):
    rotation = special_ortho_group.rvs(K, random_state=1)
    codes = {
        "identity": factors,
        "rotation": (factors - 0.5) @ rotation,
        "noise": np.random.default_rng(3).normal(size=(N, K)),
    }
    s = {}
    for name, z in codes.items():
        d = dci(factors, z, n_estimators=30)
        s[name] = (lds(factors, z), sap(factors, z), mig(factors, z), d)
    # Identity: perfect up to the finite-sample floor of |corr| ~ sqrt(2 / (pi n)).
    lds_i, sap_i, mig_i, dci_i = s["identity"]
    assert lds_i >= lds_floor(K, N)
    assert sap_i > 0.98 and mig_i > 0.9
    assert dci_i["disentanglement"] > 0.95 and dci_i["completeness"] > 0.95
    assert dci_i["informativeness"] > 0.95
    lds_r, sap_r, mig_r, dci_r = s["rotation"]
    assert lds_r < lds_i - 0.2 and sap_r < sap_i - 0.2 and mig_r < mig_i - 0.3
    assert dci_r["disentanglement"] < 0.8 and dci_r["informativeness"] > 0.9
    lds_n, sap_n, mig_n, dci_n = s["noise"]
    assert lds_n < 0.5 and sap_n < 0.02 and mig_n < 0.02
    assert dci_n["informativeness"] < 0.1
    assert dci_n["importance"].shape == (K, K)


def test_extra_noise_latents_lower_lds_only_by_the_floor(factors):
    z = np.c_[factors, np.random.default_rng(4).normal(size=(N, 3))]
    assert lds_floor(z.shape[1], N) < lds(factors, z) < lds(factors, factors)


def test_collapsed_latent_has_zero_correlation(factors):
    z = np.c_[factors, np.ones(N)]
    np.testing.assert_array_equal(abs_correlation(factors, z)[:, -1], 0.0)
    assert lds(factors, z) == pytest.approx(lds(factors, factors))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda u: lds(u, u[:-1]), "1500 rows but `latents` has 1499"),
        (lambda u: lds(np.where(u > 0.999, np.nan, u), u), "NaN or infinite"),
        (lambda u: lds(np.c_[u, np.ones(len(u))], u), r"factor column\(s\) \[4\] are constant"),
        (lambda u: lds(u, np.zeros((len(u), 2))), "every latent column is constant"),
        (lambda u: lds(u[:5], u[:5]), "at least 10 samples"),
        (lambda u: lds(u[None], u[None]), "must have shape"),
        (lambda u: sap(u, u[:, :1]), "at least 2 columns"),
        (lambda u: mig(u, u[:, :1]), "at least 2 columns"),
        (lambda u: mig(u, u, n_bins=1), "n_bins"),
        (lambda u: dci(u[:, :1], u), "at least 2 columns"),
        (lambda u: explicitness(u, u[:, :2]), "pairs factor j with latent j"),
    ],
)
def test_bad_input_is_explained(factors, call, match):
    with pytest.raises(ValueError, match=match):
        call(factors)


def test_ssim_identical_is_one_and_unit_free():
    rng = np.random.default_rng(5)
    truth = rng.normal(size=(3, 16, 16))
    np.testing.assert_allclose(ssim_scores(truth, truth), 1.0)
    recon = truth + 0.3 * rng.normal(size=truth.shape)
    s = ssim_scores(truth, recon)
    assert s.shape == (3,) and np.all(s < 0.95)
    np.testing.assert_allclose(ssim_scores(1e3 * truth, 1e3 * recon), s)
    assert ssim_scores(truth[0], recon[0]).shape == ()


def test_ssim_bad_input():
    a = np.random.default_rng(6).normal(size=(2, 16, 16))
    with pytest.raises(ValueError, match="same|shape"):
        ssim_scores(a, a[:1])
    with pytest.raises(ValueError, match=r"image\(s\) \[1\] are constant"):
        ssim_scores(np.stack([a[0], np.zeros((16, 16))]), a)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim_scores(a[:, :5, :5], a[:, :5, :5])


def test_perturbation_of_an_ignored_block_costs_nothing():
    gen = OrthonormalGenerator(rec_scale=0.0)
    z = np.random.default_rng(7).normal(size=(20, 4))
    drops = perturbation_importance(gen, z[:, :2], z[:, 2:])
    assert drops["aux"] > 0.05
    assert drops["rec"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"z_aux \(n, 2\)"):
        perturbation_importance(gen, z[:, :3], z[:, 3:])


class LeakyGenerator(OrthonormalGenerator):
    """The residual coordinate 0 also moves the named feature ``a`` by ``leak`` per unit."""

    def __init__(self, leak):
        super().__init__()
        self.leak = leak

    def decode(self, z_aux, z_rec, eps=None):
        moved = z_aux + self.leak * z_rec[..., :1] * torch.tensor([1.0, 0.0], dtype=z_aux.dtype)
        return super().decode(moved, z_rec, eps)


def test_residual_readback_measures_how_far_the_residual_block_moves_a_named_feature():
    z_aux = np.random.default_rng(9).normal(size=(30, 2))
    kept = residual_readback_sd(OrthonormalGenerator(), z_aux)
    assert kept == pytest.approx({"a": 0.0, "b": 0.0}, abs=1e-9)
    # read back as z_aux_a + 0.5 eps_0: sd 0.5 latent units, 0.15 in a's units (s = 0.3)
    leaky = residual_readback_sd(LeakyGenerator(0.5), z_aux, draws=2000, seed=1)
    assert leaky["a"] == pytest.approx(0.15, rel=0.03) and leaky["b"] < 1e-9
    with pytest.raises(ValueError, match="draws"):
        residual_readback_sd(OrthonormalGenerator(), z_aux, draws=1)
    with pytest.raises(ValueError, match="2 named columns"):
        residual_readback_sd(OrthonormalGenerator(), z_aux[:, :1])


def _dataset(gen, n=300, seed=8):
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(n, gen.aux_dim))
    z_aux = gen.to_latent(torch.as_tensor(u))
    z_rec = torch.as_tensor(rng.normal(size=(n, gen.rec_dim)))
    return gen.decode(z_aux, z_rec).numpy(), u


def test_evaluate_generator_with_exact_encoder():
    gen = OrthonormalGenerator()
    fields, u = _dataset(gen)
    out = evaluate_generator(gen, fields, u, aux_names=("a", "b"), n_perturb=16)
    assert out["scored_latents"] == "aux" and out["n"] == 300
    assert out["ssim_median"] == pytest.approx(1.0, abs=1e-9)
    assert out["lds"] > lds_floor(2, 300) and out["lds_all"] > lds_floor(4, 300)
    assert min(out["explicitness"].values()) > 0.999
    assert set(out["explicitness"]) == {"a", "b"}
    assert out["dci_informativeness"] > 0.9
    assert set(out["perturbation_ssim_drop"]) == {"aux", "rec"}
    assert out["n_projection"] == 50 and out["projection_error_median"] < 1e-6
    assert out["residual_readback_sd"] == pytest.approx({"a": 0.0, "b": 0.0}, abs=1e-9)
    assert out["link_sd"] == pytest.approx({"a": 0.03, "b": 0.03})  # tau s = 0.1 * 0.3
    # an exact encoder of an affine generator is a perfect code up to scale: it scores
    # what the factors score as their own code on this sample
    assert out["lds"] == pytest.approx(out["lds_of_factors"], abs=1e-9)
    assert out["lds_of_factors"] == pytest.approx(lds(u, u))
    assert gen.training


def test_training_scores_and_evaluate_prior_give_the_same_lds_beside_its_ceilings():
    gen = OrthonormalGenerator()
    fields, u = _dataset(gen)
    data = FieldDataset(
        fields=fields,
        factors={"a": u[:, 0], "b": u[:, 1]},
        aux_names=("a", "b"),
        units={"a": "1", "b": "1"},
        ranges={"a": (0.0, 1.0), "b": (0.0, 1.0)},
        grid=GRID,
    )
    trained = evaluate_vae(gen, data)
    held_out = evaluate_generator(gen, fields, u, n_perturb=4, n_projection=1)
    keys = ("scored_latents", "lds", "lds_ceiling", "lds_of_factors", "lds_all", "lds_all_ceiling")
    assert {k: trained[k] for k in keys} == {k: held_out[k] for k in keys}
    assert trained["lds_ceiling"] == lds_ceiling(2, 300)
    assert trained["lds_all_ceiling"] == lds_ceiling(4, 300) < trained["lds_ceiling"]
    # without an auxiliary block, the named factors are scored against every latent
    mu = np.random.default_rng(1).normal(size=(300, 3))
    alone = lds_scores(u, mu, aux_dim=0)
    assert alone["scored_latents"] == "all" and alone["lds"] == alone["lds_all"] == lds(u, mu)
    assert alone["lds_ceiling"] == lds_ceiling(3, 300)


def test_projection_errors_measure_the_part_off_the_range():
    gen = OrthonormalGenerator()
    fields, _ = _dataset(gen, n=6)
    assert projection_errors(gen, fields).max() < 1e-6
    off = fields + 0.1 * np.random.default_rng(3).normal(size=fields.shape)
    # the range is the affine span mean + z W with orthogonal rows of norm 10
    centred = off.reshape(6, -1) - gen.mean.numpy()
    w = gen.basis.numpy()
    residual = centred - centred @ w.T @ w / 100.0
    exact = np.linalg.norm(residual, axis=1) / np.linalg.norm(off.reshape(6, -1), axis=1)
    assert exact.min() > 0.01
    np.testing.assert_allclose(projection_errors(gen, off), exact, rtol=1e-4)


def test_evaluate_generator_without_aux_block_scores_all_latents():
    gen = OrthonormalGenerator(names=(), rec_dim=3)
    rng = np.random.default_rng(9)
    z = rng.normal(size=(200, 3))
    fields = gen.decode(torch.zeros(200, 0, dtype=torch.float64), torch.as_tensor(z)).numpy()
    u = z[:, :2] ** 3
    out = evaluate_generator(gen, fields, u, aux_names=("p", "q"), n_perturb=8)
    assert out["scored_latents"] == "all" and "explicitness" not in out
    assert out["lds"] == out["lds_all"] and out["lds"] > 0.8
    assert set(out["perturbation_ssim_drop"]) == {"rec"}


def test_evaluate_generator_rejects_mismatches():
    gen = OrthonormalGenerator()
    fields, u = _dataset(gen, n=30)
    with pytest.raises(ValueError, match=r"shape \(30, 16, 16\)"):
        evaluate_generator(gen, fields[:, :8], u)
    with pytest.raises(ValueError, match="named variables"):
        evaluate_generator(gen, fields, np.c_[u, u])
    with pytest.raises(ValueError, match="reorder"):
        evaluate_generator(gen, fields, u, aux_names=("b", "a"))


class DecodeOnly(OrthonormalGenerator):
    encode = None


def test_evaluate_generator_needs_an_encoder():
    gen = DecodeOnly()
    fields, u = _dataset(gen, n=30)
    with pytest.raises(TypeError, match="has no `encode"):
        evaluate_generator(gen, fields, u)


def test_lds_ceiling_is_what_a_perfect_code_scores():
    """A code equal to the factors plus independent latents scores the ceiling on average."""
    rng = np.random.default_rng(0)
    n, factors_count, extra = 2000, 4, 10
    scores = []
    for _ in range(20):
        factors = rng.uniform(size=(n, factors_count))
        code = np.concatenate([factors, rng.normal(size=(n, extra))], axis=1)
        scores.append(lds(factors, code))
    ceiling = lds_ceiling(factors_count + extra, n)
    assert abs(np.mean(scores) - ceiling) < 0.01
    assert lds_ceiling(14, 20000) == pytest.approx(0.9317, abs=1e-4)
    assert lds_ceiling(1, 10) == 1.0
