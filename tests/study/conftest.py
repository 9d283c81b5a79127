# SPDX-License-Identifier: MIT
"""Fixtures of the study tests: a tiny Aux-VAE checkpoint and a tiny DL-CFM over it."""

import pytest
import torch
from tiny_study import tiny_auxvae

from invprior.priors import DLCFMGenerator, save


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    """A small untrained Aux-VAE checkpoint on a 16 x 16 grid (path without suffix)."""
    torch.manual_seed(0)
    gen = tiny_auxvae()
    recipe = {"data": {"simulator": "source", "n": 100, "seed": 11}}  # the baseline's seed
    return save(gen, tmp_path_factory.mktemp("prior") / "tiny", recipe).with_suffix("")


@pytest.fixture(scope="module")
def tiny_flow(tmp_path_factory):
    """A small untrained DL-CFM checkpoint over the tiny Aux-VAE (path without suffix)."""
    torch.manual_seed(0)
    gen = DLCFMGenerator(tiny_auxvae(), channels=2, embed=4, residual_scale=0.01, steps=2)
    recipe = {"data": {"simulator": "source", "n": 100, "seed": 11}}
    return save(gen, tmp_path_factory.mktemp("flow") / "tiny-flow", recipe).with_suffix("")
