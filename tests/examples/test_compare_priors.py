# SPDX-License-Identifier: MIT
"""The prior comparison example runs on a tiny prior and resumes from its records."""

import json
import math

import pytest
import torch
from generators import tiny_auxvae

from invprior.priors import DLCFMGenerator, save


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_compare_runs_tiny(load_example, tmp_path):
    example = load_example("compare_priors")
    torch.manual_seed(0)
    recipe = {"data": {"simulator": "source", "seed": 11}}
    base = tiny_auxvae()
    prior = save(base, tmp_path / "tiny", recipe)
    flow = save(DLCFMGenerator(base, channels=2, embed=4, steps=2), tmp_path / "flow", recipe)
    settings = dict(
        truths=2, prior=str(prior.with_suffix("")), n=8, sensors=3, num_restarts=1,
        max_iterations=5, gp_max_iterations=50, num_draws=20, gp_fields=100, matern_fields=50,
        approx_fields=30, dlcfm=str(flow.with_suffix("")), flow_steps=1,
    )  # fmt: skip
    out = example.run(**settings, out=tmp_path / "out")
    assert set(out["table"]) == {f"{r}/{p}" for r in example.REGIMES for p in example.PRIORS}
    for entry in out["table"].values():
        assert all(math.isfinite(entry[k]) for k in ("rel_l2_error", "coverage_90", "crps"))
    assert set(out["table"]["in_distribution/aux-vae"]["named"]) == {"x0", "y0"}
    assert set(out["table"]["in_distribution/dl-cfm"]["named"]) == {"x0", "y0"}
    assert "named" not in out["table"]["misspecified/aux-vae"]
    assert len(out["truths"]) == 4
    for name in ("comparison.md", "comparison.json", "comparison.png"):
        assert (tmp_path / "out" / name).is_file()

    # a rerun of one regime, or of one shard, reads the finished truths back
    cached = tmp_path / "out" / "truths" / "misspecified-001.json"
    entry = json.loads(cached.read_text())
    entry["record"]["aux-vae"]["rel_l2_error"] = 123.0
    cached.write_text(json.dumps(entry))
    one = example.run(**settings, out=tmp_path / "out", regimes=("misspecified",), shard=(1, 2))
    assert [(r["regime"], r["index"]) for r in one["truths"]] == [("misspecified", 1)]
    assert one["truths"][0]["aux-vae"]["rel_l2_error"] == 123.0
    assert set(one["table"]) == {f"misspecified/{p}" for p in example.PRIORS}
