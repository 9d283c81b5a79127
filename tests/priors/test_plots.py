# SPDX-License-Identifier: MIT
"""Figures: built without pyplot, with the expected panels."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from invprior.priors import Generator, GridSpec
from invprior.priors.plots import (
    latent_labels,
    plot_latent_factor_grid,
    plot_reconstructions,
    plot_traversals,
)


class ShiftGenerator(Generator):
    """A bump whose x position is z_aux[0] and whose height is z_rec[0]; z_rec[1] is unused."""

    def __init__(self):
        super().__init__()
        self._init_aux(("x0",), ("m",), {"x0": (0.0, 1.0)}, torch.zeros(1), torch.ones(1))
        self.rec_dim = 2
        self.grid = GridSpec((12, 16))
        x = torch.linspace(-3, 3, 16)
        self.register_buffer("x", x.expand(12, 16).clone())

    def decode(self, z_aux, z_rec, eps=None):
        self._refuse_eps(eps)
        centre = z_aux[..., :1, None]
        height = 1 + 0.2 * z_rec[..., :1, None]
        return height * torch.exp(-((self.x - centre) ** 2))


def _images(fig):
    return [im.get_array() for ax in fig.axes for im in ax.get_images()]


def test_traversals_one_row_per_latent():
    gen = ShiftGenerator()
    fig = plot_traversals(gen, np.zeros(3), span=2.0, steps=5)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 5
    assert [fig.axes[5 * k].get_ylabel() for k in range(3)] == ["x0", "rec 0", "rec 1"]
    images = np.array(_images(fig)).reshape(3, 5, 12, 16)
    assert all(im.origin == "lower" for ax in fig.axes for im in ax.get_images())
    # The unused coordinate draws identical images; the others do not.
    assert np.ptp(images[2], axis=0).max() == 0
    assert np.ptp(images[0], axis=0).max() > 0.5 and np.ptp(images[1], axis=0).max() > 0.1
    assert latent_labels(gen) == ["x0", "rec 0", "rec 1"]
    with pytest.raises(ValueError, match="3 finite values"):
        plot_traversals(gen, np.zeros(4))
    with pytest.raises(ValueError, match="steps >= 2"):
        plot_traversals(gen, np.zeros(3), steps=1)


def test_latent_factor_grid_panels_and_title():
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(300, 2))
    z = np.c_[u[:, 1], rng.normal(size=300), u[:, 0]]
    fig = plot_latent_factor_grid(u, z, ["a", "b"])
    assert len(fig.axes) == 2 * 3
    assert "LDS" in fig.get_suptitle()
    assert fig.axes[2].get_title() == "1.00" and fig.axes[3].get_title() == "1.00"
    assert [fig.axes[3 + k].get_xlabel() for k in range(3)] == ["z0", "z1", "z2"]
    with pytest.raises(ValueError, match="one name per column"):
        plot_latent_factor_grid(u, z, ["a"])


def test_reconstructions_two_rows():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(4, 12, 12))
    fig = plot_reconstructions(truth, truth + 0.1 * rng.normal(size=truth.shape), n=6)
    assert len(fig.axes) == 2 * 4
    assert fig.axes[4].get_title().startswith("SSIM")
    fig = plot_reconstructions(truth, truth, n=2)
    assert len(fig.axes) == 4 and fig.axes[2].get_title() == "SSIM 1.000"
    with pytest.raises(ValueError, match="at least 1"):
        plot_reconstructions(truth, truth, n=0)


def test_no_pyplot_state():
    code = (
        "import sys, numpy as np; from invprior.priors.plots import plot_reconstructions; "
        "plot_reconstructions(np.eye(8)[None], np.eye(8)[None]); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
