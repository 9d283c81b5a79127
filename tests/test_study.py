# SPDX-License-Identifier: MIT
"""The ``invprior run`` and ``invprior report`` commands on a tiny study."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from invprior.cli import main
from invprior.study import StudyConfig

NAMES = ("x0", "y0")
TOML = """
[mesh]
n = 8
[sensors]
per_side = 3
[noise]
relative = 0.05
[prior]
name = "{prior}"
[truth]
simulator = "source"
seed = 5
[map]
num_restarts = 1
num_steps = 5
[mcmc]
num_samples = 6
warmup_steps = 4
num_chains = 2
max_tree_depth = 2
disable_progbar = true
[output]
folder = "{out}"
"""


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown keys \['n_sensors'\] in \[sensors\]"):
        StudyConfig.from_dict({"sensors": {"n_sensors": 3}})
    with pytest.raises(ValueError, match="unknown tables"):
        StudyConfig.from_dict({"inference": {}})
    with pytest.raises(ValueError, match="kernel must be"):
        StudyConfig.from_dict({"mcmc": {"kernel": "mala"}})
    assert StudyConfig.from_dict({"mcmc": {"num_samples": 3}}).mcmc.num_samples == 3


def test_bad_config_file_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[mesh]\nn = 1\n")
    assert main(["run", str(path)]) == 2
    assert "n must be >= 2" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    """A small untrained Aux-VAE checkpoint on a 16 x 16 grid (path without suffix)."""
    from invprior.priors import AuxVAE, GridSpec, save

    torch.manual_seed(0)
    gen = AuxVAE(
        NAMES, ("m", "m"), {n: (0.2, 0.8) for n in NAMES}, [0.5, 0.5], [0.17, 0.17],
        rec_dim=2, grid=GridSpec((16, 16)), channels=(4, 4), hidden=16,
    )  # fmt: skip
    return save(gen, tmp_path_factory.mktemp("prior") / "tiny").with_suffix("")


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_run_then_report(tiny_prior, tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text(TOML.format(prior=tiny_prior, out=tmp_path / "out"))
    assert main(["run", str(config)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    keys = {"rel_l2_error", "named_abs_error", "coverage_90", "ess_min", "rhat_max"}
    assert keys | {"divergences", "pde_solves", "wall_s"} <= set(metrics)
    assert set(metrics["named_abs_error"]) == set(NAMES)
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"posterior.nc", "fields.png", "pair.png", "traces.png", "summary.txt"} <= files
    assert main(["report", str(tmp_path / "out")]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["rel_l2_error"] == pytest.approx(metrics["rel_l2_error"])
    assert main(["report", str(tmp_path)]) == 2


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_example_script_runs_tiny(tiny_prior, tmp_path):
    path = Path(__file__).parents[1] / "examples" / "source_identification.py"
    spec = importlib.util.spec_from_file_location("source_identification", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.run(
        tmp_path, tiny_prior, n=8, sensors=3, num_samples=5, warmup_steps=4, num_restarts=1
    )
    assert {"rel_l2_error", "coverage_90", "named_variance_share", "pde_solves"} <= set(out)
    assert (tmp_path / "posterior.nc").is_file()
