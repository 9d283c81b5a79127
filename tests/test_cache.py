# SPDX-License-Identifier: MIT
"""Records kept on disk are reused only with the same settings and code."""

import json

import pytest

from invprior.cache import ResultCache
from invprior.provenance import code_fingerprint


def test_records_round_trip_and_other_settings_or_code_miss(tmp_path):
    cache = ResultCache(tmp_path / "runs", {"num_draws": 20, "regimes": ("a", "b")}, code="c1")
    assert cache.get("a-000") is None
    calls = []

    def compute(x):
        calls.append(x)
        return {"crps": x, "named": {"x0": True}}

    assert cache.fetch("a-000", compute, 0.5) == {"crps": 0.5, "named": {"x0": True}}
    assert cache.fetch("a-000", compute, 9.0) == {"crps": 0.5, "named": {"x0": True}}
    assert calls == [0.5]
    # tuples in the settings compare equal to the lists read back from disk
    again = ResultCache(tmp_path / "runs", {"num_draws": 20, "regimes": ["a", "b"]}, code="c1")
    assert again.get("a-000") == {"crps": 0.5, "named": {"x0": True}}
    assert ResultCache(tmp_path / "runs", {"num_draws": 21}, code="c1").get("a-000") is None
    other_code = ResultCache(tmp_path / "runs", {"num_draws": 20, "regimes": ["a", "b"]}, "c2")
    assert other_code.get("a-000") is None
    entry = json.loads((tmp_path / "runs" / "a-000.json").read_text())
    record = {"crps": 0.5, "named": {"x0": True}}
    assert entry == {"settings": {"num_draws": 20, "regimes": ["a", "b"]}, "code": "c1",
                     "record": record}  # fmt: skip


def test_default_code_is_the_package_fingerprint_and_keys_are_file_names(tmp_path):
    cache = ResultCache(tmp_path, {})
    assert cache.code == code_fingerprint()
    assert cache.put("truth-001", [1, 2]) == tmp_path / "truth-001.json"
    for key in ("../x", "a/b", "", ".hidden", 3):
        with pytest.raises(ValueError, match="file names"):
            cache.path(key)
