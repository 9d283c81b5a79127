# SPDX-License-Identifier: MIT
import json
import pathlib

import pytest

pytestmark = [pytest.mark.dolfinx, pytest.mark.skip_in_parallel]


def test_forward_demo_runs_tiny(tmp_path, load_example):
    demo = load_example("forward_demo")
    summary = demo.run(out=tmp_path / "demo", n=8, grid=9, sensors=2)
    assert pathlib.Path(summary["plot"]).stat().st_size > 0
    assert summary["n_obs"] == 4 and summary["ndofs"] == 81
    assert summary["solves"] == {"forward": 1, "adjoint": 1}
    assert summary["obs_max"] > 0
    json.dumps(summary)
