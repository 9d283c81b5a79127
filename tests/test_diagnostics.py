# SPDX-License-Identifier: MIT
"""ArviZ DataTree, NetCDF round trip, summaries and the variance decomposition."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from linear_gaussian import make_problem, synthetic_obs

from invprior import infer
from invprior.diagnostics import (
    field_summary,
    save_datatree,
    summarize_named,
    summarize_residual,
    to_arviz,
    variance_decomposition,
)
from invprior.sites import FIELD, Z_AUX, Z_REC


@pytest.fixture(scope="module")
def run():
    torch.manual_seed(0)
    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    result = infer.nuts(
        problem,
        obs,
        init=start,
        num_samples=15,
        warmup_steps=15,
        max_tree_depth=3,
        disable_progbar=True,
    )
    return problem, obs, result


def test_to_arviz_groups_and_shapes(run, tmp_path):
    problem, obs, result = run
    coords = np.random.default_rng(0).uniform(size=(problem.n_obs, 2))
    tree = to_arviz(result, problem, obs, sensor_coords=coords, include_field=True)
    post = tree["posterior"]
    assert set(post.data_vars) == {"u0", "u1", "e_aux", Z_AUX, Z_REC, FIELD}
    assert post["u0"].dims == ("chain", "draw")
    assert post[FIELD].dims == ("chain", "draw", "y", "x")
    assert list(post["aux"].values) == ["u0", "u1"]
    np.testing.assert_allclose(post["x"].values, np.linspace(0, 1, 4))
    stats = tree["sample_stats"]
    assert {"diverging", "step_size", "tree_depth", "acceptance_rate", "n_steps"} <= set(
        stats.data_vars
    )
    assert stats["diverging"].dtype == bool
    assert tree["posterior_predictive"]["obs"].shape == (2, 15, problem.n_obs)
    np.testing.assert_array_equal(tree["observed_data"]["obs"].values, obs.numpy())
    assert tree["constant_data"]["sensor_coords"].dims == ("sensor", "xy")
    assert float(tree["constant_data"]["noise_std"]) == pytest.approx(0.3)
    assert json.loads(tree.attrs["aux_names"]) == ["u0", "u1"]
    path = save_datatree(tree, tmp_path / "out" / "posterior.nc")
    back = xr.open_datatree(path)
    np.testing.assert_array_equal(back["posterior"]["u1"].values, post["u1"].values)
    assert [p.name for p in path.parent.iterdir()] == ["posterior.nc"]  # no temporary left


def test_to_arviz_checks_its_inputs(run):
    problem, obs, result = run
    with pytest.raises(ValueError, match="sensor_coords has shape"):
        to_arviz(result, problem, obs, sensor_coords=np.zeros((3, 2)), posterior_predictive=False)
    with pytest.raises(ValueError, match="NaN"):
        to_arviz(result, problem, obs * np.nan)


def test_summaries_are_split_into_named_and_residual(run):
    problem, obs, result = run
    tree = to_arviz(result, problem, obs, posterior_predictive=False)
    named = summarize_named(tree)
    assert list(named.index) == ["u0", "u1"]
    assert {"mean", "sd", "hdi90_lb", "hdi90_ub", "ess_bulk", "r_hat"} <= set(named.columns)
    np.testing.assert_allclose(named.loc["u0", "mean"], result.samples["u0"].mean().item())
    assert len(summarize_residual(tree)) == 2


def test_field_summary_matches_numpy():
    x = np.random.default_rng(1).normal(size=(2, 50, 3, 4))
    out = field_summary(torch.from_numpy(x))
    flat = x.reshape(100, 3, 4)
    np.testing.assert_allclose(out["mean"], flat.mean(0))
    np.testing.assert_allclose(out["q95"], np.quantile(flat, 0.95, axis=0))
    assert out["std"].shape == (3, 4)
    with pytest.raises(ValueError, match="ny, nx"):
        field_summary(np.zeros((3, 4)))


def test_variance_decomposition_of_a_linear_generator():
    """x = m + A z_aux + B z_rec with independent draws: the shares are known exactly."""
    problem = make_problem(aux_dim=2, rec_dim=2)
    gen = problem.prior.generator
    g = torch.Generator().manual_seed(0)
    samples = {
        Z_AUX: 2.0 * torch.randn(4000, 2, generator=g, dtype=torch.float64),
        Z_REC: 0.5 * torch.randn(4000, 2, generator=g, dtype=torch.float64),
    }
    out = variance_decomposition(problem, samples, num_inner=16, max_draws=4000)
    named = (4.0 * gen.a_aux.pow(2).sum(1)).sum().item()
    residual = (0.25 * gen.a_rec.pow(2).sum(1)).sum().item()
    assert out.named_share == pytest.approx(named / (named + residual), abs=0.03)
    assert out.named_share + out.residual_share == pytest.approx(1.0)
    assert out.named_var.shape == out.residual_var.shape == (3, 4)
    none = variance_decomposition(make_problem(aux_dim=0), {Z_REC: samples[Z_REC]})
    assert none.named_share == 0.0


def test_report_from_a_synthetic_study(run, tmp_path):
    from invprior.report import study_metrics, text_summary, write_report

    problem, obs, result = run
    truth = {"u0": 0.1, "u1": -0.2, FIELD: result.samples[FIELD][0, 0]}
    tree = to_arviz(result, problem, obs, include_field=True, truth=truth)
    metrics = study_metrics(tree)
    assert set(metrics) >= {"rel_l2_error", "coverage_90", "named_abs_error", "ess_min"}
    assert metrics["named_abs_error"]["u0"] == pytest.approx(
        abs(result.samples["u0"].mean().item() - 0.1)
    )
    assert metrics["sampling_pde_solves"] == sum(result.pde_solves.values())
    checks = metrics["checks"]
    assert set(checks) == {"rhat", "ess_bulk", "ess_tail", "divergences", "bfmi"}
    assert checks["ess_bulk"]["passed"] is False and checks["ess_bulk"]["threshold"] == 200
    assert "Named parameters" in text_summary(tree)
    written = write_report(tree, tmp_path)
    assert sorted(written) == ["fields", "metrics", "pair", "summary", "traces"]
    assert all(p.stat().st_size > 0 for p in written.values())
    assert json.loads(written["metrics"].read_text())["checks"]["ess_bulk"]["passed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written.values())
