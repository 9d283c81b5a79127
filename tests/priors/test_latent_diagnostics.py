# SPDX-License-Identifier: MIT
"""bfVAE-style diagnostics on decoders whose latent-to-pixel structure is known."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from invprior.priors.dirty_regression import dirty_block_sparse_regression
from invprior.priors.latent_diagnostics import (
    align_latents,
    plot_traversal_heterogeneity,
    separation_index,
    traversal_heterogeneity,
)

D = 4  # latents
SHAPE = (8, 6)  # latent i drives rows 2i, 2i + 1


def block_decode(z):
    """Latent i moves only rows 2i and 2i + 1 of an 8 x 6 field (nonlinearly)."""
    rows = np.repeat(np.tanh(z), 2, axis=1)
    return np.repeat(rows[:, :, None], SHAPE[1], axis=2)


PATTERN = np.random.default_rng(0).uniform(0.5, 1.5, SHAPE)


def shared_decode(z):
    """Every latent moves every pixel in the same way."""
    return np.sin(z.sum(axis=1))[:, None, None] * PATTERN


class TorchBlocks(torch.nn.Module):
    """``decode_latent`` of a module with a float64 buffer: latent i scales block i."""

    def __init__(self):
        super().__init__()
        self.register_buffer("masks", torch.eye(D, dtype=torch.float64).repeat_interleave(2, 1))

    def decode_latent(self, z):
        assert z.dtype == torch.float64  # the module's dtype, found from its buffer
        return (z @ self.masks)[..., :, None].expand(*z.shape[:-1], 2 * D, SHAPE[1])


def test_block_decoder_traversal_is_one_hot_and_separated():
    out = traversal_heterogeneity(block_decode, D, num_points=5, num_base=3)
    expected = np.repeat(np.eye(D), 2 * SHAPE[1], axis=1)
    np.testing.assert_allclose(out["share"], expected, atol=1e-12)
    assert out["feature_shape"] == SHAPE
    assert separation_index(out["variance"]) == pytest.approx(1.0)


def test_shared_decoder_traversal_is_uniform_and_not_separated():
    out = traversal_heterogeneity(shared_decode, D, num_points=9, num_base=64)
    assert np.allclose(out["share"], 1 / D, atol=0.1)
    assert separation_index(out["variance"]) < 0.05


def test_module_decode_and_pooled_features():
    module = TorchBlocks()
    out = traversal_heterogeneity(module.decode_latent, D, features=2, num_points=3)
    assert out["feature_shape"] == (D, SHAPE[1] // 2)
    np.testing.assert_allclose(out["share"], np.repeat(np.eye(D), 3, axis=1), atol=1e-12)
    feature_map = traversal_heterogeneity(
        module.decode_latent, D, features=lambda f: f.sum(axis=2), num_points=3
    )
    assert feature_map["share"].shape == (D, 2 * D) and feature_map["feature_shape"] is None


def test_plot_traversal_heterogeneity_draws_one_panel_per_latent():
    out = traversal_heterogeneity(block_decode, D, num_points=3, num_base=1)
    fig = plot_traversal_heterogeneity(out["share"], out["feature_shape"])
    assert isinstance(fig, Figure)
    assert sum(len(ax.get_images()) for ax in fig.axes) == D
    assert isinstance(plot_traversal_heterogeneity(out["share"]), Figure)
    with pytest.raises(ValueError, match="feature_shape"):
        plot_traversal_heterogeneity(out["share"], (5, 5))


def test_dirty_regression_recovers_blocks_and_shared_structure():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((400, D))
    fields = block_decode(z).reshape(400, -1) + 0.01 * rng.standard_normal((400, 48))
    out = dirty_block_sparse_regression(z, fields)
    support = np.abs(out["coef"]) > 0.1
    np.testing.assert_array_equal(support, np.repeat(np.eye(D, dtype=bool), 12, axis=1))
    assert out["importance"].shape == (D,) and (out["importance"] > 1).all()
    assert separation_index(coef=out["coef"]) > 0.95

    linear = z.sum(axis=1)[:, None] * PATTERN.reshape(1, -1)
    shared = dirty_block_sparse_regression(z, linear)
    assert separation_index(coef=shared["coef"]) < 0.05
    # a latent acting on every feature lands in the row-sparse part G
    assert np.linalg.norm(shared["group"]) > 10 * np.linalg.norm(shared["sparse"])


def test_dirty_regression_single_feature_goes_to_sparse_part():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((300, 3))
    y = np.column_stack([z[:, 0], rng.standard_normal((300, 15))])
    out = dirty_block_sparse_regression(z, y)
    assert abs(out["sparse"][0, 0]) > 0.8
    assert np.count_nonzero(out["coef"][:, 1:]) <= 3
    with pytest.warns(RuntimeWarning, match="did not converge"):
        dirty_block_sparse_regression(z, y, lam_sparse=1e-4, max_iter=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"features": np.ones((20, 2))}, "constant"),
        ({"latents": np.ones((5, 2)), "features": np.ones((5, 2))}, "rows"),
        ({"lam_sparse": -1.0}, "penalties"),
        ({"features": np.full((20, 2), np.nan)}, "NaN"),
    ],
)
def test_dirty_regression_bad_input(kwargs, match):
    rng = np.random.default_rng(3)
    args = {"latents": rng.normal(size=(20, 2)), "features": rng.normal(size=(20, 2))}
    with pytest.raises(ValueError, match=match):
        dirty_block_sparse_regression(**(args | kwargs))


def test_separation_index_combines_and_checks():
    assert separation_index(np.eye(3), np.ones((3, 5))) == pytest.approx(0.5)
    for bad, match in [
        ({}, "pass"),
        ({"traversal_variance": -np.eye(2)}, "non-negative"),
        ({"traversal_variance": np.ones((1, 4))}, "latent_dim >= 2"),
        ({"traversal_variance": np.eye(2), "coef": np.eye(3)}, "latents"),
    ]:
        with pytest.raises(ValueError, match=match):
            separation_index(**bad)


def test_align_latents_recovers_permutation_and_signs():
    rng = np.random.default_rng(4)
    reference = rng.standard_normal((500, 5))
    perm, sign = np.array([3, 0, 4, 1, 2]), np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    other = np.empty_like(reference)
    other[:, perm] = reference * sign + 0.1 * rng.standard_normal((500, 5))
    out = align_latents(reference, other)
    np.testing.assert_array_equal(out["permutation"], perm)
    np.testing.assert_array_equal(out["sign"], sign)
    assert (out["correlation"] > 0.99).all()
    np.testing.assert_allclose(other[:, out["permutation"]] * out["sign"], reference, atol=0.5)
    with pytest.raises(ValueError, match="same shape"):
        align_latents(reference, other[:, :4])


def test_traversal_bad_input():
    with pytest.raises(ValueError, match="num_points"):
        traversal_heterogeneity(block_decode, D, num_points=1)
    with pytest.raises(ValueError, match="block pooling"):
        traversal_heterogeneity(block_decode, D, features=10)
    with pytest.raises(ValueError, match="feature map"):
        traversal_heterogeneity(block_decode, D, features=lambda f: f.sum(axis=(1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        traversal_heterogeneity(lambda z: np.full((len(z), 2), np.nan), D)
    with pytest.raises(ValueError, match="one field per latent"):
        traversal_heterogeneity(lambda z: np.ones((2, 3)), D)
    with pytest.raises(TypeError, match="block size"):
        traversal_heterogeneity(block_decode, D, features=2.5)
