# SPDX-License-Identifier: MIT
"""Simulation-based calibration: exact posteriors pass, overconfident ones fail."""

import numpy as np
import pytest
import torch
from linear_gaussian import make_problem
from tiny_study import study_toml, tiny_auxvae

from invprior.cache import ResultCache, parse_shard
from invprior.calibration import (
    SBCResult,
    laplace_posterior,
    mcmc_posterior,
    plot_rank_histograms,
    sbc_ranks,
)
from invprior.infer import MapConfig, MCMCConfig
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
@pytest.mark.parametrize(
    ("kernel", "chains", "problems"),
    [("nuts", 1, 60), ("chees", 4, 100)],  # NUTS chains run one by one: fewer problems
)
def test_mcmc_gives_uniform_ranks(kernel, chains, problems):
    # The same closed-form posterior sampled by short chains, thinned to 19 draws per problem.
    problem = make_problem(aux_dim=2, rec_dim=1, n_obs=4, noise=0.5)
    config = MCMCConfig(
        num_chains=chains, warmup_steps=40, num_samples=40, max_tree_depth=4,
        disable_progbar=True,
    )  # fmt: skip
    posterior = mcmc_posterior(problem, 19, config, kernel=kernel, map_config=FAST_MAP)
    result = sbc_ranks(problem, problems, num_draws=19, num_bins=5, seed=2, posterior=posterior)
    assert min(result.p_values.values()) > 1e-3, result.p_values
    if kernel == "chees":  # a sampler of the wrong posterior (noise 0.05, data 0.5) fails
        wrong = make_problem(aux_dim=2, rec_dim=1, n_obs=4, noise=0.05)
        posterior = mcmc_posterior(wrong, 19, config, kernel=kernel, map_config=FAST_MAP)
        result = sbc_ranks(problem, 40, num_draws=19, num_bins=5, seed=2, posterior=posterior)
        assert min(result.p_values.values()) < 1e-4, result.p_values


def test_mcmc_posterior_thins_every_chain_evenly_and_refuses_bad_settings():
    problem = make_problem(aux_dim=1, rec_dim=1, n_obs=3, noise=0.5)
    config = MCMCConfig(num_chains=2, warmup_steps=4, num_samples=5, max_tree_depth=2,
                        disable_progbar=True)  # fmt: skip
    posterior = mcmc_posterior(problem, 4, config, map_config=FAST_MAP)
    obs = torch.zeros(3, dtype=torch.float64)
    draws = posterior(obs, 7)["u0"]
    from invprior import infer

    start = infer.map(problem, obs, seed=7, config=FAST_MAP)
    chains = infer.nuts(problem, obs, init=start, seed=7, config=config).samples["u0"]
    # indices 0, 3, 6, 9 of the 10 pooled draws: two from each chain
    torch.testing.assert_close(draws, chains.reshape(-1)[[0, 3, 6, 9]])
    with pytest.raises(ValueError, match="fewer than the 11"):
        mcmc_posterior(problem, 11, config)
    with pytest.raises(ValueError, match="kernel must be one of"):
        mcmc_posterior(problem, 4, config, kernel="mala")


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


def test_shards_and_a_resumed_run_give_the_ranks_of_one_run(tmp_path, capsys):
    problem = make_problem(aux_dim=1, rec_dim=1, n_obs=3, noise=0.5)
    posterior = laplace_posterior(problem, 9, FAST_MAP)
    whole = sbc_ranks(problem, 5, num_draws=9, num_bins=5, seed=4, posterior=posterior)
    cache = ResultCache(tmp_path, {"routine": "laplace"})
    capsys.readouterr()
    odd = sbc_ranks(problem, 5, num_draws=9, num_bins=5, seed=4, posterior=posterior,
                    cache=cache, shard=(1, 2))  # fmt: skip
    np.testing.assert_array_equal(odd.ranks, whole.ranks[1::2])
    # not on a terminal (a log file): one line per computed problem, with its ranks
    log = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in log] == ["SBC problem-0001", "SBC problem-0003"]
    assert f"ranks u0 {whole.ranks[1, 0]} of 9 draws" in log[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["problem-0001.json", "problem-0003.json"]

    def refuse(obs, seed):  # a resumed run recomputes nothing already kept
        raise AssertionError("recomputed a kept problem")

    kept = sbc_ranks(problem, 4, num_draws=9, num_bins=5, seed=4, posterior=refuse,
                     cache=cache, shard=(1, 2))  # fmt: skip
    np.testing.assert_array_equal(kept.ranks, whole.ranks[1:4:2])
    assert capsys.readouterr().err == ""  # nothing computed, nothing logged
    rebuilt = SBCResult.from_ranks(whole.names, whole.ranks, 9, 5)
    assert rebuilt.p_values == whole.p_values
    for shard in [(2, 2), (0, 0), (1, 4)]:  # out of range, no shards, one problem only
        with pytest.raises(ValueError, match="shard k/n"):
            sbc_ranks(problem, 5, num_draws=9, num_bins=5, shard=shard)


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1) and parse_shard("3/4") == (3, 4)
    for text in ["1", "a/2", "2/2", "-1/2", "1/2/3", "1.0/2"]:
        with pytest.raises(ValueError, match=f"0 <= K < N, got {text!r}"):
            parse_shard(text)


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
    assert len(list((tmp_path / "out" / "problems").iterdir())) == 3
    # two shards into one folder: the first writes no report, the second the whole one
    shards = tmp_path / "shards"
    first = example.run(problems=4, draws=9, bins=5, config=config, out=shards, shard=(0, 2))
    assert (first["problems"], first["finished"], first["complete"]) == (2, 2, False)
    assert not (shards / "calibration.json").exists()
    second = example.run(problems=4, draws=9, bins=5, config=config, out=shards, shard=(1, 2))
    assert second["problems"] == 4 and second["complete"]
    assert (shards / "calibration.json").is_file()
    whole = example.run(problems=4, draws=9, bins=5, config=config)
    assert whole["p_values"] == second["p_values"]
    # another [mcmc] table of the study (unused by SBC) keeps the ranks; another noise level
    # recomputes them
    text = config.read_text()
    config.write_text(text.replace("[mcmc]\n", "[mcmc]\ntarget_accept_prob = 0.95\n"))
    again = example.run(problems=4, draws=9, bins=5, config=config, out=shards, shard=(1, 2))
    assert again["complete"] and again["p_values"] == second["p_values"]
    config.write_text(text.replace("relative = 0.05", "relative = 0.1"))
    fresh = example.run(problems=4, draws=9, bins=5, config=config, out=shards, shard=(1, 2))
    assert (fresh["finished"], fresh["complete"]) == (2, False)
    mcmc = MCMCConfig(num_chains=4, warmup_steps=4, num_samples=5, disable_progbar=True)
    out = example.run(problems=3, draws=9, bins=5, config=config, sampler="chees", mcmc=mcmc)
    assert out["sampler"] == "chees" and out["mcmc"]["num_chains"] == 4
    assert set(out["p_values"]) == {"x0", "y0"}
