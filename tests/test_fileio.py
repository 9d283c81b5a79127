# SPDX-License-Identifier: MIT
"""Atomic writes: complete files or the previous one, never a half-written file."""

import json

import numpy as np
import pytest

from invprior.fileio import atomic_path, write_json


def test_write_json_round_trips_numpy_numbers(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": np.float32(0.5), "b": [np.float64(2.0), 3]})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [2.0, 3]}
    assert path.read_text().count("\n") > 0  # indented by default
    write_json(path, {"c": 1}, indent=None)
    assert path.read_text() == '{"c": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"old": True})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text('{"new": ')
        raise RuntimeError("interrupted")
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
