# SPDX-License-Identifier: MIT
"""The README's "Python API" example runs as printed (with tiny sizes)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

TINY = {
    "(32, 32)": "(8, 8)",
    "num_samples=200, warmup_steps=200": "num_samples=40, warmup_steps=10, max_tree_depth=3",
    "infer.map(problem, obs)": "infer.map(problem, obs, num_restarts=1)",
    "print(az.loo(tree))": "print(az.loo(tree).elpd)",
}


def _example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README has no python block under '## Python API'"
    code = blocks[0]
    for old, new in TINY.items():
        assert old in code, f"the README example no longer contains {old!r}"
        code = code.replace(old, new)
    return code


def test_the_example_is_about_30_lines():
    lines = [line for line in _example().splitlines() if line.strip()]
    assert len(lines) <= 32


@pytest.mark.dolfinx
@pytest.mark.skip_in_parallel
def test_the_python_api_example_runs():
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _example()],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("x0", "y0", "amplitude", "width"):
        assert re.search(rf"^{name}\s", out.stdout, flags=re.M), out.stdout
    assert re.search(r"^-?\d+\.\d+$", out.stdout.strip().splitlines()[-1]), out.stdout
