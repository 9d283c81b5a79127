# SPDX-License-Identifier: MIT
"""The fault suite's runner: bad input and interrupts against the ``invprior`` command.

Every case runs the command in a subprocess (on 1 rank, or on 2 under ``mpiexec`` with a
timeout, so a hang fails the test instead of stalling the suite) and asserts the named
error, the exit status, and that nothing was written half-way. The cases are skipped
when the suite itself runs under ``mpiexec``: they start their own ranks.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HANG_TIMEOUT_S = 240


def run_cli(*args, ranks=1, cwd=None, timeout=HANG_TIMEOUT_S, env=None):
    """Run ``invprior ARGS`` on ``ranks`` MPI ranks; a hang past ``timeout`` fails the test."""
    command = [str(BIN / "invprior"), *map(str, args)]
    if ranks > 1:
        command = [str(BIN / "mpiexec"), "-n", str(ranks), *command]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"hang: `{' '.join(command)}` still running after {timeout} s\n{err.stderr}")


def assert_input_error(result, command, *fragments):
    """The bad-input convention: status 2, an ``invprior CMD: error:`` line, no traceback."""
    shown = (result.returncode, result.stdout[-2000:], result.stderr[-4000:])
    assert result.returncode == 2, shown
    assert f"invprior {command}: error:" in result.stderr, result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-4000:])


def listing(folder):
    """Every path under ``folder`` (hidden ones included), relative, sorted; [] if absent."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
