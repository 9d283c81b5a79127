# SPDX-License-Identifier: MIT
"""The Gaussian-field baseline of a study (:mod:`invprior.study.baseline`)."""

import numpy as np
import pytest
import torch
from tiny_study import NAMES, tiny_auxvae

from invprior.priors import load


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_gp_baseline_is_the_closed_form_posterior():
    """Source problem: the baseline equals the Gaussian posterior from the dense map F."""
    from mpi4py import MPI

    from invprior.bridge import TorchForward
    from invprior.model import DisentangledPrior, InverseProblem
    from invprior.pde import SourceProblem, grid_sensors, rectangle
    from invprior.priors import AuxVAE, GaussianFieldGenerator, GridSpec
    from invprior.priors.simulate import simulate
    from invprior.study import BaselineConfig, gp_baseline

    grid = GridSpec((8, 8))
    gen = AuxVAE(NAMES, ("m", "m"), {n: (0.2, 0.8) for n in NAMES}, [0.5] * 2, [0.2] * 2,
                 rec_dim=1, grid=grid, channels=(2,), hidden=4)  # fmt: skip
    model = SourceProblem(rectangle(MPI.COMM_WORLD, grid.bbox, (6, 6)),
                          grid_sensors(grid.bbox, 3), grid.shape, grid.bbox)  # fmt: skip
    y = model.forward(simulate("source", 1, 5, grid).fields[0].astype(np.float64))
    std = 0.05 * np.abs(y).max()
    y = y + std * np.random.default_rng(0).standard_normal(y.shape)
    problem = InverseProblem(DisentangledPrior(gen), TorchForward(model), std)
    config = BaselineConfig(num_fields=60, seed=3)
    base = gp_baseline(problem, torch.as_tensor(y), "source", config, linear=True)
    fields = torch.as_tensor(simulate("source", 60, 3, grid).fields, dtype=torch.float64)
    gp = GaussianFieldGenerator.from_samples(fields, 0.999, grid)
    basis, mean0 = gp.basis.numpy(), gp.mean.numpy().ravel()
    F, offset = model.affine_map()
    G = F @ basis / std
    cov = np.linalg.inv(G.T @ G + np.eye(gp.rec_dim))
    mean = mean0 + basis @ cov @ G.T @ (y - F @ mean0 - offset) / std
    field_std = np.sqrt(np.einsum("ij,jk,ik->i", basis, cov, basis))
    np.testing.assert_allclose(base["mean"].values.ravel(), mean, atol=1e-6 * abs(mean).max())
    np.testing.assert_allclose(base["std"].values.ravel(), field_std, rtol=1e-8)
    assert base.attrs["rank"] == gp.rec_dim and base.attrs["seed"] == 3
    assert base.attrs["method"].startswith("MAP + Laplace (exact")


def test_baseline_seed_is_explicit_then_the_training_seed_then_zero(tmp_path):
    from invprior.priors import save
    from invprior.study import baseline_seed

    stem = save(tiny_auxvae(), tmp_path / "g", {"data": {"simulator": "source", "seed": 11}})
    generator = load(stem.with_suffix(""))
    assert baseline_seed(generator, "source", 4) == (4, "[baseline] seed")
    assert baseline_seed(generator, "source") == (11, "the generator's training data")
    assert baseline_seed(generator, "conductivity")[0] == 0  # data of another simulator
    assert baseline_seed(tiny_auxvae(), "source")[0] == 0  # no recorded training data


def test_oracle_gaussian_is_the_float64_moments_of_simulator_draws():
    from invprior.priors import GridSpec
    from invprior.priors.simulate import simulate
    from invprior.study import oracle_gaussian

    grid = GridSpec((6, 6))
    gp = oracle_gaussian("source", 40, 3, grid, 1.0)
    fields = simulate("source", 40, 3, grid).fields.astype(np.float64).reshape(40, -1)
    assert gp.basis.dtype == torch.float64
    np.testing.assert_allclose(gp.mean.numpy().ravel(), fields.mean(0), rtol=1e-12)
    cov = np.cov(fields, rowvar=False)
    basis = gp.basis.numpy()
    np.testing.assert_allclose(basis @ basis.T, cov, atol=1e-10 * np.abs(cov).max())
