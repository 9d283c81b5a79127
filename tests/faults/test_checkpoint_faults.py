# SPDX-License-Identifier: MIT
"""Faults: a checkpoint whose sidecar or weights were changed after it was saved.

Each command must refuse it with the named file, status 2 and no traceback, before
writing anything.
"""

import json

import pytest
from fault_cli import assert_input_error, listing, run_cli
from tiny_study import study_toml, tiny_auxvae

from invprior.priors import save


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny Aux-VAE checkpoint, ``tmp_path/prior/tiny.{json,safetensors}``: the stem."""
    stem = tmp_path / "prior" / "tiny"
    save(tiny_auxvae(), stem, {"data": {"simulator": "source", "seed": 1}})
    return stem


def _edit_sidecar(stem):
    """Widen a named variable's range in the config and the description, as by hand."""
    path = stem.with_suffix(".json")
    meta = json.loads(path.read_text())
    meta["config"]["aux_ranges"]["x0"] = [0.0, 1.0]
    meta["ranges"]["x0"] = [0.0, 1.0]
    path.write_text(json.dumps(meta, indent=2))


def _truncate_weights(stem):
    path = stem.with_suffix(".safetensors")
    path.write_bytes(path.read_bytes()[:64])


@pytest.mark.parametrize(
    ("fault", "named", "fragment"),
    [
        (_edit_sidecar, ".json", "was changed after it was written"),
        (_truncate_weights, ".safetensors", "the weights are corrupt or were altered"),
    ],
    ids=["edited-sidecar", "truncated-weights"],
)
def test_evaluate_prior_refuses_an_altered_checkpoint(
    tmp_path, checkpoint, fault, named, fragment
):
    fault(checkpoint)
    result = run_cli("evaluate-prior", checkpoint, "--n", "20", "--out", tmp_path / "out")
    assert_input_error(result, "evaluate-prior", f"{checkpoint}{named}", fragment)
    assert listing(tmp_path / "out") == []


def test_run_refuses_an_edited_prior_on_every_rank(tmp_path, checkpoint):
    _edit_sidecar(checkpoint)
    out = tmp_path / "out"
    config = tmp_path / "study.toml"
    config.write_text(study_toml(checkpoint, out))
    result = run_cli("run", config, ranks=2)
    assert_input_error(
        result, "run", "[prior] name", f"{checkpoint}.json", "was changed after it was written"
    )
    assert result.stderr.count("invprior run: error:") == 1
    assert listing(out) == []
