# SPDX-License-Identifier: MIT
"""Sampling checks and their warnings, summaries, the report and the variance decomposition."""

import json
import warnings

import arviz as az
import numpy as np
import pytest
import torch
import xarray as xr
from linear_gaussian import make_problem, short_nuts_run, synthetic_obs

from invprior import infer
from invprior.datatree import to_arviz
from invprior.diagnostics import (
    SamplingWarning,
    field_summary,
    sampling_checks,
    summarize_named,
    summarize_residual,
    variance_decomposition,
)
from invprior.report import study_metrics, text_summary, write_report
from invprior.sites import FIELD, Z_AUX, Z_REC


@pytest.fixture(scope="module")
def run():
    problem, obs, _, result = short_nuts_run()
    return problem, obs, result


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)
        return fn()


def test_warnings_fire_on_a_bad_run():
    """Two chains far apart that barely move: R-hat and both ESS checks fail loudly."""
    torch.manual_seed(0)
    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    init = torch.tensor([[1.0] * 6, [-1.0] * 6], dtype=torch.float64)
    result = infer.hmc(problem, obs, init=init, num_samples=12, warmup_steps=0, num_steps=2,
                       step_size=1e-3, disable_progbar=True)  # fmt: skip
    with pytest.warns(SamplingWarning) as record:
        tree = to_arviz(result, problem, obs, num_prior_draws=0, posterior_predictive=False)
    messages = " ".join(str(w.message) for w in record)
    assert "R-hat is" in messages and "bulk ESS is" in messages and "tail ESS is" in messages
    checks = sampling_checks(tree)
    assert checks["rhat"]["passed"] is False and checks["rhat"]["value"] > 1.01
    assert checks["ess_bulk"]["threshold"] == 200


def test_warnings_fire_on_divergences_and_low_bfmi():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(2, 400))
    energy = np.cumsum(rng.normal(scale=0.05, size=(2, 400)), axis=1)  # a random walk
    diverging = np.zeros((2, 400), dtype=bool)
    diverging[0, 3] = True
    tree = az.from_dict({"posterior": {"a": draws},
                         "sample_stats": {"energy": energy, "diverging": diverging}})  # fmt: skip
    tree.attrs["deterministic"] = "[]"
    checks = sampling_checks(tree)
    assert checks["divergences"] == {"value": 1.0, "threshold": 0, "passed": False,
                                     "variable": None}  # fmt: skip
    assert checks["bfmi"]["passed"] is False and checks["bfmi"]["value"] < 0.3
    assert checks["rhat"]["passed"] and checks["ess_bulk"]["passed"]
    assert isinstance(tree, xr.DataTree)


def test_warnings_stay_quiet_on_a_good_run():
    torch.manual_seed(0)
    problem = make_problem(aux_dim=2, rec_dim=2)
    obs = synthetic_obs(problem)
    start = infer.map(problem, obs, num_restarts=1)
    # 1000 draws a chain: with 400, split R-hat sat at the 1.01 threshold and floating-point
    # paths decided the warning
    result = infer.nuts(problem, obs, init=start, num_samples=1000, warmup_steps=200,
                        disable_progbar=True)  # fmt: skip
    tree = _quiet(lambda: to_arviz(result, problem, obs, num_prior_draws=0))
    assert all(c["passed"] for c in sampling_checks(tree).values())


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
