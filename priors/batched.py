# SPDX-License-Identifier: MIT
"""Batched, gradient-free NumPy I/O of torch maps: decode latents, encode fields.

Metrics, plots, the approximation-error model and the command line evaluate a generator on
thousands of samples held as NumPy arrays. :func:`map_batches` is the one loop that does
it: slices of the input go to the map as tensors on the generator's dtype and device, and
the outputs come back as one float64 array. :func:`decode_latents` and
:func:`encode_means` are that loop for :meth:`~invprior.priors.Generator.decode` and for
the encoder means.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .arrays import reference_tensor
from .base import Generator

__all__ = ["decode_latents", "encode_means", "map_batches"]


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
