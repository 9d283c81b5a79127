# SPDX-License-Identifier: MIT
"""The code fingerprint that keys cached results."""

import re

from invprior.provenance import code_fingerprint, sources_fingerprint


def test_fingerprint_follows_paths_and_contents(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    before = sources_fingerprint([tmp_path / "pkg"])
    assert re.fullmatch("[0-9a-f]{16}", before)
    assert sources_fingerprint([tmp_path / "pkg"]) == before
    (tmp_path / "pkg" / "notes.txt").write_text("still not code")
    assert sources_fingerprint([tmp_path / "pkg"]) == before
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    edited = sources_fingerprint([tmp_path / "pkg"])
    assert edited != before
    (tmp_path / "pkg" / "sub" / "b.py").rename(tmp_path / "pkg" / "b.py")
    assert sources_fingerprint([tmp_path / "pkg"]) not in (before, edited)


def test_package_fingerprint_covers_the_three_source_folders():
    import invprior.priors

    fingerprint = code_fingerprint()
    assert re.fullmatch("[0-9a-f]{16}", fingerprint) and code_fingerprint() == fingerprint
    assert sources_fingerprint(invprior.priors.__path__) != fingerprint
