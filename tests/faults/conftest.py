# SPDX-License-Identifier: MIT
"""The fault suite (helpers in ``fault_cli.py``): skipped under ``mpiexec``, as its cases
start their own ranks."""

from pathlib import Path

import pytest
import torch
from tiny_study import tiny_auxvae

from invprior.priors import save


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).is_relative_to(here):
            item.add_marker(pytest.mark.skip_in_parallel)


@pytest.fixture(scope="session")
def tiny_prior(tmp_path_factory):
    """A small untrained Aux-VAE checkpoint (path without suffix), read-only to the tests."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("prior")
    return save(tiny_auxvae(), folder / "tiny", {"data": {"seed": 11}}).with_suffix("")
