# SPDX-License-Identifier: MIT
"""Simulation-based calibration: exact posteriors pass, overconfident ones fail."""

import numpy as np
import pytest
import torch
from linear_gaussian import make_problem
from tiny_study import study_toml, tiny_auxvae

from invprior.calibration import laplace_posterior, plot_rank_histograms, sbc_ranks
from invprior.infer import MapConfig
from invprior.priors import save

FAST_MAP = MapConfig(num_restarts=1, max_iterations=20)


@pytest.mark.slow
def test_exact_laplace_gives_uniform_ranks(tmp_path):
    # Linear generator, linear forward map, Normal named priors: Laplace is the posterior.
    problem = make_problem(aux_dim=2, rec_dim=1, n_obs=4, noise=0.5)
    posterior = laplace_posterior(problem, 19, FAST_MAP)
    result = sbc_ranks(problem, 120, num_draws=19, num_bins=5, seed=1, posterior=posterior)
    assert result.ranks.shape == (120, 2) and result.ranks.max() <= 19
    assert min(result.p_values.values()) > 1e-3, result.p_values
    assert result.histograms().sum() == 240
    fig = plot_rank_histograms(result)
    fig.savefig(tmp_path / "ranks.png")
    assert (tmp_path / "ranks.png").stat().st_size > 0


@pytest.mark.slow
def test_overconfident_posterior_is_detected():
    # Data simulated with noise 0.5, posterior computed as if the noise were 0.05.
    problem = make_problem(aux_dim=2, rec_dim=1, n_obs=4, noise=0.5)
    wrong = make_problem(aux_dim=2, rec_dim=1, n_obs=4, noise=0.05)
    posterior = laplace_posterior(wrong, 19, FAST_MAP)
    result = sbc_ranks(problem, 120, num_draws=19, num_bins=5, seed=1, posterior=posterior)
    assert min(result.p_values.values()) < 1e-6, result.p_values
    counts = result.histograms()
    assert (counts[:, [0, -1]].sum(1) > counts[:, 1:-1].sum(1) / 3 * 2).all()  # U shape


def test_same_seed_same_ranks_and_bad_input():
    problem = make_problem(aux_dim=1, rec_dim=1, n_obs=3, noise=0.5)
    posterior = laplace_posterior(problem, 9, FAST_MAP)
    a = sbc_ranks(problem, 4, num_draws=9, num_bins=5, seed=3, posterior=posterior)
    b = sbc_ranks(problem, 4, num_draws=9, num_bins=5, seed=3, posterior=posterior)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    with pytest.raises(ValueError, match="dividing"):
        sbc_ranks(problem, 4, num_draws=10, num_bins=5)
    with pytest.raises(ValueError, match="no named variables"):
        sbc_ranks(make_problem(aux_dim=0, rec_dim=1), 4)
    with pytest.raises(ValueError, match="expected 9"):
        sbc_ranks(problem, 2, num_draws=9, num_bins=5, posterior=laplace_posterior(problem, 4))


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_example_runs_tiny(tmp_path, load_example):
    torch.manual_seed(0)
    prior = save(tiny_auxvae(), tmp_path / "tiny").with_suffix("")
    config = tmp_path / "study.toml"
    config.write_text(study_toml(prior))
    example = load_example("calibration")
    out = example.run(problems=3, draws=9, bins=5, config=config, out=tmp_path / "out")
    assert set(out["p_values"]) == {"x0", "y0"} and 0 <= out["min_p_value"] <= 1
    assert (tmp_path / "out" / "ranks.png").is_file()
    assert (tmp_path / "out" / "calibration.json").is_file()
