# SPDX-License-Identifier: MIT
"""The code fingerprint that keys cached results."""

import re

from invprior.provenance import code_fingerprint, sources_fingerprint


def test_fingerprint_follows_paths_and_contents(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    roots = [("pkg", tmp_path / "pkg")]
    before = sources_fingerprint(roots)
    assert re.fullmatch("[0-9a-f]{16}", before)
    assert sources_fingerprint(roots) == before
    (tmp_path / "pkg" / "notes.txt").write_text("still not code")
    assert sources_fingerprint(roots) == before
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    edited = sources_fingerprint(roots)
    assert edited != before
    (tmp_path / "pkg" / "sub" / "b.py").rename(tmp_path / "pkg" / "b.py")
    assert sources_fingerprint(roots) not in (before, edited)
    assert sources_fingerprint([("other", tmp_path / "pkg")]) != sources_fingerprint(roots)


def test_a_wheel_and_an_editable_install_of_the_same_sources_agree(tmp_path):
    # source tree: the subpackage lives in its own top-level folder (a package-dir mapping);
    # installed wheel: it sits inside its parent's folder and is also found on its own
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "x = 1\n",
        "sub/__init__.py": "",
        "sub/b.py": "y\n",
    }
    for name, text in files.items():
        (tmp_path / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / name).write_text(text)
        installed = name if name.startswith("pkg/") else f"pkg/{name}"
        (tmp_path / "site" / installed).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "site" / installed).write_text(text)
    editable = [("pkg", tmp_path / "tree" / "pkg"), ("pkg/sub", tmp_path / "tree" / "sub")]
    wheel = [("pkg", tmp_path / "site" / "pkg"), ("pkg/sub", tmp_path / "site" / "pkg" / "sub")]
    assert sources_fingerprint(editable) == sources_fingerprint(wheel)
    (tmp_path / "site" / "pkg" / "sub" / "b.py").write_text("z\n")
    assert sources_fingerprint(editable) != sources_fingerprint(wheel)


def test_package_fingerprint_covers_the_three_source_folders():
    import invprior.priors

    fingerprint = code_fingerprint()
    assert re.fullmatch("[0-9a-f]{16}", fingerprint) and code_fingerprint() == fingerprint
    priors_only = [("invprior/priors", folder) for folder in invprior.priors.__path__]
    assert sources_fingerprint(priors_only) != fingerprint


def test_package_fingerprint_is_read_once_per_process(monkeypatch):
    # sources edited while a long run goes on must not relabel the records it writes after
    import invprior.provenance as provenance

    edits = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr(provenance, "sources_fingerprint", lambda roots: next(edits))
    code_fingerprint.cache_clear()
    try:
        assert code_fingerprint() == "0" * 16 and code_fingerprint() == "0" * 16
    finally:
        code_fingerprint.cache_clear()
