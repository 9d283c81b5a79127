# SPDX-License-Identifier: MIT
"""Fault cases of the output folder: checked before any work, written as one unit.

The folder is checked on rank 0 before the mesh is built and the verdict is shared, so
a folder that is a file or cannot be written stops every rank with status 2 (never a
hang under ``mpiexec``, as a rank that raised alone before a collective used to cause)
and nothing is created. The results are built in a hidden partial sibling and swapped in
whole: a rerun leaves no file of the previous study, a failure while writing leaves the
previous folder as it was, and no partial folder survives either. The refusals run the
real command (on 1 and on 2 ranks); the runs to the end run in this process.
"""

import json
import os
import types

import pytest
import xarray as xr
from fault_cli import assert_input_error, listing, run_cli
from tiny_study import study_toml

from invprior.cli import INTERRUPTED, main
from invprior.study import run as study_run

FILES = {
    "posterior.nc", "fields.xdmf", "fields.h5", "fields.png", "traces.png", "pair.png",
    "summary.txt", "metrics.json", "linearised_modes.png", "linearised_std.png",
    "block_correlation.png",
}  # fmt: skip


@pytest.fixture
def study(tiny_prior, tmp_path):
    """``study.toml`` of a tiny study (no baseline) in an empty folder."""
    path = tmp_path / "study.toml"
    path.write_text(study_toml(tiny_prior, baseline=False))
    return path


def _strict(text):
    def reject(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def _previous_study(folder):
    """A folder as an earlier study left it, plus a figure the next study does not draw."""
    folder.mkdir()
    (folder / "posterior.nc").write_text("posterior of the previous study")
    (folder / "summary.txt").write_text("previous summary")
    (folder / "stale_prior.png").write_text("figure of the previous prior")
    return listing(folder)


@pytest.mark.parametrize("ranks", [1, 2])
def test_an_output_folder_that_is_a_file_stops_every_rank_before_any_work(study, ranks):
    target = study.parent / "results"
    target.write_text("my notes")
    result = run_cli("run", study.name, "--out", "results", ranks=ranks, cwd=study.parent)
    assert_input_error(
        result, "run", "output folder 'results' ([output] folder or --out) is a file"
    )
    assert result.stderr.count("invprior run: error:") == 1  # rank 0 prints
    assert target.read_text() == "my notes"
    assert listing(study.parent) == ["results", "study.toml"]  # no folder, no partial


@pytest.mark.parametrize("ranks", [1, 2])
def test_an_output_folder_that_cannot_be_written_stops_every_rank(study, ranks):
    parent = study.parent / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):  # root: permissions do not stop it; a file does
            parent.chmod(0o700)
            parent.rmdir()
            parent.write_text("a file, not a folder")
            fragments = ("lies under", "locked', which is a file")
        else:
            fragments = ("cannot be written", "Permission denied")
        out = "locked/results"
        result = run_cli("run", study.name, "--out", out, ranks=ranks, cwd=study.parent)
        assert_input_error(
            result, "run", f"output folder '{out}' ([output] folder or --out)", *fragments
        )
        assert listing(parent) == []  # nothing created in it
    finally:
        if parent.is_dir():
            parent.chmod(0o700)
    assert listing(study.parent) == ["locked", "study.toml"]


def test_a_rerun_replaces_the_whole_folder_and_clears_a_killed_runs_leftovers(study, capsys):
    out = study.parent / "out"
    _previous_study(out)
    killed = study.parent / ".out.partial-killed"  # what a SIGKILL while writing leaves
    killed.mkdir()
    (killed / "posterior.nc").write_bytes(b"\0" * 4096)
    text = study.read_text().replace("num_samples = 6", "num_samples = 12")
    study.write_text(text.replace("num_chains = 2", "num_chains = 1"))  # R-hat: NaN
    assert main(["run", str(study), "--out", str(out)]) == 0
    metrics = _strict(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["rhat_max"] is None and metrics["rhat_max_note"] == "not finite: nan"
    assert metrics["folder"] == str(out)
    files = set(listing(out))
    assert FILES <= files and "stale_prior.png" not in files
    assert not [name for name in files if name.startswith(".")]
    assert listing(study.parent) == sorted(["study.toml", "out", *(f"out/{f}" for f in files)])
    with xr.open_datatree(out / "posterior.nc") as tree:
        assert "posterior" in tree.children  # the new study's, not the fake
    written = _strict((out / "metrics.json").read_text())
    assert written["rhat_max"] is None and written["rhat_max_note"] == "not finite: nan"
    assert written["ess_min"] == metrics["ess_min"] > 0
    assert '"rhat_max": null' in (out / "summary.txt").read_text()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_while_writing_leaves_the_previous_folder_as_it_was(study, monkeypatch, error):
    out = study.parent / "out"
    before = _previous_study(out)
    written = []

    def write_report(tree, folder):
        written.append(folder)
        (folder / "summary.txt").write_text("half of a new summary")
        raise error("disk full while writing the report")

    monkeypatch.setattr(study_run, "write_report", write_report)
    if error is KeyboardInterrupt:  # SIGTERM or Ctrl-C while writing: status 130
        assert main(["run", str(study), "--out", str(out)]) == INTERRUPTED
    else:
        with pytest.raises(error, match="disk full"):
            main(["run", str(study), "--out", str(out)])
    assert written and written[0].name.startswith(".out.partial-")  # not the folder itself
    assert listing(out) == before
    assert (out / "summary.txt").read_text() == "previous summary"
    left = [p for p in listing(study.parent) if not p.startswith(".out.sampling")]
    assert left == sorted(["study.toml", "out", *(f"out/{f}" for f in before)])  # no partial


def test_a_folder_of_other_files_is_refused_before_any_work(study, capsys, monkeypatch):
    mine = study.parent / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("keep me")

    def build_study(*args):
        raise AssertionError("the mesh was built before the output folder was checked")

    monkeypatch.setattr(study_run, "build_study", build_study)
    assert main(["run", str(study), "--out", str(mine)]) == 2
    result = types.SimpleNamespace(
        returncode=2, **dict(zip(("stdout", "stderr"), capsys.readouterr(), strict=True))
    )
    assert_input_error(
        result, "run", "holds 1 entries but no posterior.nc", "give a new or empty folder"
    )
    assert listing(mine) == ["chapter1.tex"]
