# SPDX-License-Identifier: MIT
import importlib.util
import json
import pathlib

import pytest

pytestmark = [pytest.mark.dolfinx, pytest.mark.skip_in_parallel]

DEMO = pathlib.Path(__file__).resolve().parents[2] / "examples" / "forward_demo.py"


def test_forward_demo_runs_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("forward_demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    summary = demo.run(out=tmp_path / "demo", n=8, grid=9, sensors=2)
    assert pathlib.Path(summary["plot"]).stat().st_size > 0
    assert summary["n_obs"] == 4 and summary["ndofs"] == 81
    assert summary["solves"] == {"forward": 1, "adjoint": 1}
    assert summary["obs_max"] > 0
    json.dumps(summary)
