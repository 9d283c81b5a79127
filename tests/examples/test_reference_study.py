# SPDX-License-Identifier: MIT
"""``examples/reference_study.py``: a tiny run that writes the summary, and bad input."""

import json
import sys
from pathlib import Path

import pytest

from invprior.fileio import json_text
from invprior.validation import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIG = str(EXAMPLES / "source_identification.toml")


@pytest.mark.dolfinx
@pytest.mark.filterwarnings("ignore::invprior.diagnostics.SamplingWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # R-hat of 8-draw chains
def test_tiny_run_writes_the_summary(load_example, tmp_path):
    example = load_example("reference_study")
    result = example.run(
        CONFIG, truths=1, out=tmp_path, num_chains=4, warmup_steps=8, num_samples=8
    )
    assert result["truths"] == 1
    entry = result["summary"]["in_distribution"]
    assert set(entry["named"]) == {"x0", "y0", "amplitude", "width"}
    assert entry["exact"]["rel_l2_error_median"] < 0.5
    assert {p.name for p in tmp_path.iterdir()} >= {"reference.md", "reference.json", "truths"}
    written = json.loads((tmp_path / "reference.json").read_text())
    # as written (an R-hat of 8-draw chains may be undefined: NaN, null in the file)
    summary = json.loads(json_text(result["summary"]))
    assert written["truths"][0]["index"] == 0 and written["summary"] == summary
    named = written["truths"][0]["projection_named"]
    assert set(named) == set(entry["named"]) and 0.0 < named["width"] < 1.0
    # records of older code, without the projection's named factors: summarised again
    # without sampling, they get them back to the digit
    old = {
        **written,
        "truths": [{k: v for k, v in written["truths"][0].items() if k != "projection_named"}],
    }
    (tmp_path / "reference.json").write_text(json.dumps(old))
    again = example.run(CONFIG, truths=1, out=tmp_path, summary_only=True)
    assert json.loads(json_text(again["summary"])) == summary
    assert (
        json.loads((tmp_path / "reference.json").read_text())["truths"][0]["projection_named"]
        == named
    )
    # records of another generator are refused, by name
    old["truths"][0]["projection_error"] *= 1.5
    (tmp_path / "reference.json").write_text(json.dumps(old))
    with pytest.raises(InputError, match="record in_distribution-000: projection error"):
        example.run(CONFIG, truths=1, out=tmp_path, summary_only=True)


def test_sampler_settings_replace_the_studys_mcmc(load_example):
    config = load_example("reference_study").study_config(CONFIG, num_chains=12)
    assert (config.mcmc.kernel, config.mcmc.num_chains, config.mcmc.num_samples) == (
        "chees",
        12,
        100,  # the default, what docs/results.md ran
    )
    assert config.prior.name == "source-auxvae" and config.approximation_error.enabled
    other = load_example("reference_study").study_config(CONFIG, prior="source-betavae", tau=0.05)
    assert (other.prior.name, other.prior.tau) == ("source-betavae", 0.05)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shard", "1"], "--shard: a shard is K/N with integers 0 <= K < N, got '1'"),
        (["--shard", "2/2"], "0 <= K < N, got '2/2'"),
        (["--truths", "0"], "num_truths >= 1"),
        (
            ["--summary-only", "--out", "/nonexistent"],
            "/nonexistent/reference.json: no study records",
        ),
    ],
)
def test_bad_arguments_are_named(load_example, monkeypatch, capsys, argv, message):
    example = load_example("reference_study")
    monkeypatch.setattr(sys, "argv", ["reference_study.py", CONFIG, *argv])
    with pytest.raises(SystemExit):
        example.main()
    assert message in capsys.readouterr().err
