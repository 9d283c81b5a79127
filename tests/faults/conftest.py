# SPDX-License-Identifier: MIT
"""The fault suite (helpers in ``fault_cli.py``): skipped under ``mpiexec``, as its cases
start their own ranks."""

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).is_relative_to(here):
            item.add_marker(pytest.mark.skip_in_parallel)
