# SPDX-License-Identifier: MIT
"""The prior comparison example on a tiny prior, and its scores against known answers."""

import json
import math

import numpy as np
import pytest
import torch
from tiny_study import tiny_auxvae


@pytest.fixture(scope="module")
def example(load_example):
    return load_example("compare_priors")


def test_crps_matches_the_gaussian_closed_form(example):
    """Sample CRPS of N(0, 1) draws against x: sigma [z(2Phi(z)-1) + 2phi(z) - 1/sqrt(pi)]."""
    draws = np.random.default_rng(0).standard_normal((20000, 1, 2))
    truth = np.array([[0.0, 1.0]])
    phi = [math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) for z in (0.0, 1.0)]
    cdf = [0.5 * (1 + math.erf(z / math.sqrt(2))) for z in (0.0, 1.0)]
    exact = [z * (2 * c - 1) + 2 * p - 1 / math.sqrt(math.pi) for z, c, p in
             zip((0.0, 1.0), cdf, phi, strict=True)]  # fmt: skip
    assert example.crps(draws, truth) == pytest.approx(np.mean(exact), abs=5e-3)


def test_fit_matern_recovers_the_length_scale(example):
    from invprior.priors import GaussianFieldPrior, GridSpec

    grid = GridSpec((12, 12))
    gp = GaussianFieldPrior.matern(grid, 2.0, 0.3, nu=2.5, variance_fraction=1.0)
    torch.manual_seed(0)
    fields = gp.decode(torch.zeros(400, 0), torch.randn(400, gp.rec_dim)).double().numpy()
    fit = example.fit_matern(fields, grid, length_scales=[0.1, 0.2, 0.3, 0.45], jitter=1e-6)
    assert fit["nu"] == 2.5 and fit["length_scale"] == pytest.approx(0.3)
    assert fit["variance"] == pytest.approx(2.0, rel=0.2)


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_compare_runs_tiny(example, tmp_path):
    from invprior.priors import DLCFMGenerator, save

    torch.manual_seed(0)
    recipe = {"data": {"simulator": "source", "seed": 11}}
    base = tiny_auxvae()
    prior = save(base, tmp_path / "tiny", recipe)
    flow = save(DLCFMGenerator(base, channels=2, embed=4, steps=2), tmp_path / "flow", recipe)
    settings = dict(
        truths=2, prior=str(prior.with_suffix("")), n=8, sensors=3, num_restarts=1,
        num_steps=5, gp_steps=50, num_draws=20, gp_fields=100, matern_fields=50,
        approx_fields=30, dlcfm=str(flow.with_suffix("")), flow_steps=1,
    )  # fmt: skip
    out = example.run(tmp_path / "out", **settings)
    assert set(out["table"]) == {f"{r}/{p}" for r in example.REGIMES for p in example.PRIORS}
    for entry in out["table"].values():
        assert all(math.isfinite(entry[k]) for k in ("rel_l2_error", "coverage_90", "crps"))
    assert set(out["table"]["in_distribution/aux-vae"]["named"]) == {"x0", "y0"}
    assert set(out["table"]["in_distribution/dl-cfm"]["named"]) == {"x0", "y0"}
    assert "named" not in out["table"]["misspecified/aux-vae"]
    assert len(out["truths"]) == 4
    for name in ("comparison.md", "comparison.json", "comparison.png"):
        assert (tmp_path / "out" / name).is_file()

    # a rerun reads every truth's scores back; other settings ignore them
    cached = tmp_path / "out" / "truths" / "in_distribution-000.json"
    entry = json.loads(cached.read_text())
    entry["rows"]["aux-vae"]["rel_l2_error"] = 123.0
    cached.write_text(json.dumps(entry))
    again = example.run(tmp_path / "out", **settings)
    assert again["truths"][0]["aux-vae"]["rel_l2_error"] == 123.0
    assert again["truths"][1:] == out["truths"][1:]
    other = example.run(tmp_path / "out", **{**settings, "num_draws": 21})
    assert other["truths"][0]["aux-vae"]["rel_l2_error"] < 10
    one = example.run(tmp_path / "out", **{**settings, "num_draws": 21}, regimes=("misspecified",))
    assert set(one["table"]) == {f"misspecified/{p}" for p in example.PRIORS}
    assert one["truths"] == other["truths"][2:]  # read back, not recomputed
    odd = example.run(tmp_path / "out", **{**settings, "num_draws": 21}, shard=(1, 2))
    assert [(r["regime"], r["index"]) for r in odd["truths"]] == [
        ("in_distribution", 1), ("misspecified", 1)
    ]  # fmt: skip
