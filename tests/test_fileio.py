# SPDX-License-Identifier: MIT
"""Atomic writes (a file, or a whole folder as one unit) and strict JSON."""

import json
import math
import os
import tempfile

import numpy as np
import pytest

from invprior.fileio import (
    atomic_path,
    check_output_folder,
    json_text,
    move_into,
    partial_folder,
    swap_folder,
    write_json,
)
from invprior.validation import InputError

WHERE = "[output] folder or --out"


def _strict_load(text):
    """json.loads that rejects NaN and Infinity, as strict parsers do."""

    def reject(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


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


def test_json_is_strict_with_notes_for_non_finite_numbers(tmp_path):
    metrics = {
        "rhat_max": float("nan"),
        "ess_min": np.float32(12.5),
        "wall_s": np.float64("inf"),
        "divergences": np.int64(3),
        "named": {"x0": -math.inf, "x1": 0.25},
        "trace": [1.0, float("nan"), np.float32("-inf")],
        "flag": np.bool_(True),
        "zero_d": np.array(float("nan")),
        "kept": float("nan"),
        "kept_note": "set by the caller",
    }
    text = json_text(metrics)
    assert "NaN" not in text and "Infinity" not in text
    loaded = _strict_load(text)
    assert loaded["rhat_max"] is None and loaded["rhat_max_note"] == "not finite: nan"
    assert loaded["ess_min"] == 12.5 and loaded["divergences"] == 3
    assert isinstance(loaded["divergences"], int)
    assert loaded["wall_s"] is None and loaded["wall_s_note"] == "not finite: inf"
    assert loaded["named"] == {"x0": None, "x0_note": "not finite: -inf", "x1": 0.25}
    assert loaded["trace"] == [1.0, None, None]  # list items: null, no note
    assert loaded["flag"] == 1.0 and loaded["zero_d"] is None
    assert loaded["kept"] is None and loaded["kept_note"] == "set by the caller"
    assert list(loaded)[:2] == ["rhat_max", "rhat_max_note"]  # the note follows its key
    path = write_json(tmp_path / "metrics.json", metrics, indent=2)
    assert _strict_load(path.read_text()) == loaded
    with pytest.raises(TypeError, match="object"):
        json_text({"a": object()})


def test_partial_folder_is_a_hidden_sibling_swapped_in_as_a_unit(tmp_path):
    out = tmp_path / "results" / "study"
    partial = partial_folder(out)  # parents created
    assert partial.parent == out.parent and partial.name.startswith(".study.partial-")
    assert partial.is_dir() and not out.exists()
    assert partial.stat().st_mode & 0o777 == 0o777 & ~_umask()
    (partial / "posterior.nc").write_text("first")
    assert swap_folder(partial, out) == out
    assert _names(out) == ["posterior.nc"] and _names(out.parent) == ["study"]
    # a rerun: files of the earlier run that the new one does not write are gone
    (out / "stale.png").write_text("figure of the previous prior")
    partial = partial_folder(out)
    (partial / "posterior.nc").write_text("second")
    (partial / "sub").mkdir()
    swap_folder(partial, out)
    assert _names(out) == ["posterior.nc", "sub"]
    assert (out / "posterior.nc").read_text() == "second"
    assert _names(out.parent) == ["study"]  # no partial, no old folder left


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_move_into_replaces_each_target_in_order(tmp_path, monkeypatch):
    (tmp_path / "a.h5").write_text("old data")
    (tmp_path / "a.xdmf").write_text("old index")
    partial = partial_folder(tmp_path / "a.xdmf")
    (partial / "a.h5").write_text("new data")
    (partial / "a.xdmf").write_text("new index")
    renames = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renames.append(dst) or replace(src, dst))
    targets = {"a.h5": tmp_path / "a.h5", "a.xdmf": tmp_path / "a.xdmf"}
    assert move_into(partial, targets) == list(targets.values()) == renames
    assert (tmp_path / "a.h5").read_text() == "new data"
    assert (tmp_path / "a.xdmf").read_text() == "new index"
    assert _names(partial) == []


def test_move_into_stops_at_a_missing_file_and_keeps_the_rest(tmp_path):
    (tmp_path / "b.txt").write_text("old b")
    partial = partial_folder(tmp_path / "out")
    (partial / "a.txt").write_text("new a")
    with pytest.raises(FileNotFoundError):
        move_into(partial, {"a.txt": tmp_path / "a.txt", "b.txt": tmp_path / "b.txt"})
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert (tmp_path / "b.txt").read_text() == "old b"  # not in the partial folder


def test_an_interrupted_swap_restores_the_previous_folder(tmp_path, monkeypatch):
    out = tmp_path / "study"
    out.mkdir()
    (out / "posterior.nc").write_text("old")
    partial = partial_folder(out)
    (partial / "posterior.nc").write_text("new")
    rename = os.rename

    def interrupted(src, dst):
        if str(src) == str(partial):
            raise KeyboardInterrupt  # between renaming the old folder aside and the new in
        rename(src, dst)

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        swap_folder(partial, out)
    monkeypatch.undo()
    assert (out / "posterior.nc").read_text() == "old"
    assert _names(tmp_path) == [partial.name, "study"]  # no old folder aside
    partial_folder(out)  # the next run removes the partial folder left behind
    assert [p for p in _names(tmp_path) if p != "study"][0].startswith(".study.partial-")
    assert partial.name not in _names(tmp_path)


def test_leftovers_of_a_killed_run_are_cleared_by_the_next(tmp_path):
    out = tmp_path / "study"
    killed = tmp_path / ".study.partial-killed"
    killed.mkdir()
    (killed / "posterior.nc").write_text("half" * 1000)
    aside = tmp_path / ".study.old-killed"  # killed between the two renames of a swap
    aside.mkdir()
    (aside / "posterior.nc").write_text("complete")
    (tmp_path / ".other.partial-x").mkdir()  # another folder's: kept
    partial = partial_folder(out)
    assert (out / "posterior.nc").read_text() == "complete"  # restored
    assert _names(tmp_path) == sorted([".other.partial-x", partial.name, "study"])


def test_a_symlinked_folder_keeps_its_link(tmp_path):
    target = tmp_path / "scratch" / "study"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("old")
    link = tmp_path / "study"
    link.symlink_to(target)
    check_output_folder(link, WHERE)
    partial = partial_folder(link)
    assert partial.parent == target.parent
    (partial / "new.txt").write_text("new")
    swap_folder(partial, link)
    assert link.is_symlink() and _names(link) == ["new.txt"] and _names(target) == ["new.txt"]


def test_check_output_folder_accepts_new_empty_and_earlier_results(tmp_path):
    check_output_folder(tmp_path / "a" / "b" / "new", WHERE, "posterior.nc")
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", WHERE, "posterior.nc")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "posterior.nc").write_text("x")
    (tmp_path / "earlier" / "stale.png").write_text("x")
    check_output_folder(tmp_path / "earlier", WHERE, "posterior.nc")
    assert _names(tmp_path) == ["earlier", "empty"]  # no probe file, no folder made
    assert _names(tmp_path / "earlier") == ["posterior.nc", "stale.png"]


def test_check_output_folder_names_the_folder_and_the_fix(tmp_path, monkeypatch):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    with pytest.raises(InputError, match=r"notes.txt' \(\[output\] folder or --out\) is a file"):
        check_output_folder(afile, WHERE)
    with pytest.raises(InputError, match=r"lies under .*notes.txt', which is a file"):
        check_output_folder(afile / "out", WHERE)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    with pytest.raises(InputError, match="holds 1 entries but no posterior.nc"):
        check_output_folder(mine, WHERE, "posterior.nc")
    monkeypatch.chdir(mine)
    with pytest.raises(InputError, match="is or holds the working folder"):
        check_output_folder(".", WHERE, "posterior.nc")
    with pytest.raises(InputError, match="is or holds the working folder"):
        check_output_folder(tmp_path, WHERE)
    assert afile.read_text() == "mine" and _names(mine) == ["thesis.tex"]


def test_check_output_folder_rejects_a_parent_it_cannot_write(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root: permissions do not stop it, so refuse the probe

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(locked))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(InputError, match=r"cannot be written: .*Permission denied"):
            check_output_folder(locked / "out", WHERE)
        with pytest.raises(InputError, match=r"locked/a/b' .* cannot be written"):
            check_output_folder(locked / "a" / "b", WHERE)
    finally:
        locked.chmod(0o700)
    assert _names(locked) == []
