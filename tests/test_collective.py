# SPDX-License-Identifier: MIT
"""Errors agreed across MPI ranks, and output folders written as one unit by all ranks.

Marked ``mpi``: ``make test`` runs them on 2 ranks too, where a rank that does not raise
with the others would hang the run instead of failing it.
"""

from pathlib import Path

import pytest

from invprior.collective import on_root, raise_together, staged_folder
from invprior.validation import InputError

pytestmark = pytest.mark.mpi


def _shared(comm, tmp_path_factory):
    """One folder for all ranks (rank 0's temporary folder)."""
    return Path(comm.bcast(str(tmp_path_factory.mktemp("out")) if comm.rank == 0 else None))


def test_raise_together_raises_one_ranks_error_on_every_rank(comm):
    with raise_together(comm):
        pass  # no error: nothing raised
    last = comm.size - 1
    with pytest.raises((ValueError, RuntimeError)) as info, raise_together(comm):
        if comm.rank == last:
            raise ValueError("bad value on the last rank")
    if comm.rank == last:
        assert type(info.value) is ValueError
    else:
        assert type(info.value) is RuntimeError
        assert str(info.value) == f"MPI rank {last} failed: ValueError: bad value on the last rank"
    with pytest.raises(InputError, match=r"^\[output\] folder: bad$"), raise_together(comm):
        if comm.rank == last:
            raise InputError("[output] folder: bad")
    with pytest.raises(KeyError), raise_together(comm):  # every rank raises its own
        raise KeyError(comm.rank)


def test_on_root_gives_rank_0s_result_or_error_to_every_rank(comm):
    ran = []

    def work(a, b):
        ran.append(comm.rank)
        return {"sum": a + b}

    assert on_root(comm, work, 2, 3) == {"sum": 5}
    assert ran == ([0] if comm.rank == 0 else [])

    def fail():
        raise InputError("output folder 'x' is a file")

    with pytest.raises(InputError, match="^output folder 'x' is a file$"):
        on_root(comm, fail)

    def crash():
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError if comm.rank == 0 else RuntimeError, match="No space left"):
        on_root(comm, crash)


def test_staged_folder_swaps_in_what_every_rank_wrote(comm, tmp_path_factory):
    out = _shared(comm, tmp_path_factory) / "study"
    if comm.rank == 0:
        out.mkdir()
        (out / "stale.png").write_text("figure of an earlier run")
    with staged_folder(comm, out) as partial:
        assert comm.allgather(str(partial)) == [str(partial)] * comm.size
        assert partial.name.startswith(".study.partial-") and not (partial / "x").exists()
        (partial / f"rank{comm.rank}.txt").write_text("new")
    comm.Barrier()
    assert sorted(p.name for p in out.iterdir()) == [f"rank{r}.txt" for r in range(comm.size)]
    assert sorted(p.name for p in out.parent.iterdir()) == ["study"]


@pytest.mark.parametrize("rank", ["first", "last"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_write_on_one_rank_keeps_the_old_folder(comm, tmp_path_factory, error, rank):
    """An error or an interrupt (SIGTERM) on one rank alone: every rank raises."""
    out = _shared(comm, tmp_path_factory) / "study"
    if comm.rank == 0:
        out.mkdir()
        (out / "posterior.nc").write_text("old")
    failing = 0 if rank == "first" else comm.size - 1
    with pytest.raises(error) as info, staged_folder(comm, out) as partial:
        (partial / f"rank{comm.rank}.txt").write_text("new")
        if comm.rank == failing:
            raise error("writing failed")
    if error is KeyboardInterrupt:  # the same message on every rank
        assert str(info.value) == "writing failed"
    elif comm.rank != failing:
        assert str(info.value) == f"MPI rank {failing} failed: RuntimeError: writing failed"
    comm.Barrier()
    assert sorted(p.name for p in out.iterdir()) == ["posterior.nc"]
    assert (out / "posterior.nc").read_text() == "old"
    assert sorted(p.name for p in out.parent.iterdir()) == ["study"]  # no partial folder


def test_staged_folder_agrees_on_a_folder_rank_0_cannot_make(comm, tmp_path_factory):
    blocker = _shared(comm, tmp_path_factory) / "a_file"
    if comm.rank == 0:
        blocker.write_text("not a folder")
    comm.Barrier()
    entered = []
    with (
        pytest.raises(OSError if comm.rank == 0 else RuntimeError),
        staged_folder(comm, blocker / "study"),
    ):
        entered.append(True)
    assert entered == [] and blocker.read_text() == "not a folder"
