# SPDX-License-Identifier: MIT
"""Batched, gradient-free NumPy I/O of torch maps: decode latents, encode fields.

Metrics, plots, the approximation-error model and the command line evaluate a generator on
thousands of samples held as NumPy arrays. :func:`map_batches` is the one loop that does
it: slices of the input go to the map as tensors on the generator's dtype and device, and
the outputs come back as one float64 array. :func:`decode_latents` and
:func:`encode_means` are that loop for :meth:`~invprior.priors.Generator.decode` and for
the encoder means; :func:`least_squares_latents` moves latents to the least-squares
projection of fields onto the generator's range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .arrays import reference_tensor
from .base import Generator

__all__ = ["decode_latents", "encode_means", "least_squares_latents", "map_batches"]


def map_batches(
    fn: Callable, x: np.ndarray, batch_size: int, like: torch.Tensor | None = None
) -> np.ndarray:
    """``fn`` applied to ``batch_size`` rows of ``x`` at a time, without gradients.

    Args:
        fn: Map from a batch of rows, shape ``(b, ...)``, to one output row per input row,
            shape ``(b, ...)``; NumPy or torch output.
        x: Inputs, shape ``(n, ...)``.
        batch_size: Rows per call.
        like: Pass the rows as tensors with this tensor's dtype and device; None passes
            NumPy slices.

    Returns:
        The outputs concatenated along the first axis, float64.

    Example:
        >>> map_batches(lambda b: 2 * b, np.arange(5.0), 2, like=torch.zeros(()))
        array([0., 2., 4., 6., 8.])
    """
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            y = fn(xb if like is None else torch.as_tensor(xb).to(like))
            if isinstance(y, torch.Tensor):
                y = y.detach().cpu().double().numpy()
            out.append(np.asarray(y, dtype=np.float64))
    return np.concatenate(out)


def decode_latents(generator: Generator, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Decode NumPy latents in batches, without gradients.

    A flow generator decodes its noise-free path (``eps=None``).

    Args:
        generator: The generator, in its current mode.
        z: Latents, auxiliary block first, shape ``(n, aux_dim + rec_dim)``.
        batch_size: Samples decoded at once.

    Returns:
        Fields, float64, shape ``(n, ny, nx)``.
    """
    d = generator.aux_dim
    return map_batches(
        lambda zb: generator.decode(zb[:, :d], zb[:, d:]),
        z,
        batch_size,
        reference_tensor(generator),
    )


def encode_means(generator: Generator, fields: np.ndarray, batch_size: int = 256) -> np.ndarray:
    r"""Encoder means :math:`\mu` of NumPy fields in batches, without gradients.

    Args:
        generator: A generator with an encoder (an :class:`~invprior.priors.Encoder`), in
            its current mode.
        fields: Fields on the generator's grid, shape ``(n, ny, nx)``.
        batch_size: Samples encoded at once.

    Returns:
        Means, float64, auxiliary block first, shape ``(n, aux_dim + rec_dim)``.
    """
    return map_batches(
        lambda xb: generator.encode(xb)[0], fields, batch_size, reference_tensor(generator)
    )


def least_squares_latents(
    generator: Generator, fields: np.ndarray, z0: np.ndarray, steps: int, batch_size: int = 256
) -> np.ndarray:
    r"""Latents moved from ``z0`` towards :math:`\arg\min_z \|x - G(z)\|^2` by L-BFGS.

    The objective of a batch is a sum of independent per-field least-squares terms, so one
    L-BFGS run (``steps`` iterations, strong Wolfe line search) refines every field of the
    batch at once. A flow generator is projected along its noise-free path.

    Args:
        generator: The generator, in its current mode.
        fields: Fields on the generator's grid, shape ``(n, ny, nx)``.
        z0: Starting latents, auxiliary block first, shape ``(n, aux_dim + rec_dim)``
            (:func:`encode_means`, say).
        steps: L-BFGS iterations per batch.
        batch_size: Fields refined at once.

    Returns:
        Latents, float64, shape ``(n, aux_dim + rec_dim)``.
    """
    like = reference_tensor(generator)
    out = [
        _least_squares_batch(
            generator,
            torch.as_tensor(fields[i : i + batch_size]).to(like),
            torch.as_tensor(z0[i : i + batch_size]).to(like),
            steps,
        )
        for i in range(0, len(fields), batch_size)
    ]
    return np.concatenate(out)


def _least_squares_batch(
    generator: Generator, x: torch.Tensor, z0: torch.Tensor, steps: int
) -> np.ndarray:
    """One batch of :func:`least_squares_latents`: one L-BFGS run over all its fields."""
    d = generator.aux_dim
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([z], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * (generator.decode(z[:, :d], z[:, d:]) - x).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return z.detach().cpu().double().numpy()
