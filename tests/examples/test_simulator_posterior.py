# SPDX-License-Identifier: MIT
"""``examples/simulator_posterior.py``: a tiny run, and a study without a source truth."""

import math
from pathlib import Path

import pytest

from invprior.validation import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.dolfinx
@pytest.mark.filterwarnings("ignore::invprior.diagnostics.SamplingWarning")
def test_tiny_example_run(load_example, tmp_path):
    example = load_example("simulator_posterior")
    config = str(EXAMPLES / "source_identification.toml")
    metrics = example.run(
        config, num_chains=2, warmup_steps=6, num_samples=6, num_restarts=1, out=tmp_path
    )
    assert set(metrics["named_in_hdi90"]) == {"x0", "y0", "amplitude", "width"}
    assert 0 < metrics["rel_l2_error"] < 0.5 and 0 <= metrics["coverage_90"] <= 1
    assert metrics["sampling_pde_solves"] == 0  # the dense map: no solve while sampling
    assert math.isfinite(metrics["mode_energy"]) and metrics["config"] == config
    assert {p.name for p in tmp_path.iterdir()} >= {"metrics.json", "summary.txt", "pair.png"}


def test_a_study_without_a_source_truth_is_refused(load_example):
    example = load_example("simulator_posterior")
    config = EXAMPLES / "conductivity_identification.toml"
    with pytest.raises(InputError, match="kind = 'source'"):
        example.exact_problem(config)
