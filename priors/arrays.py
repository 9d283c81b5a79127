# SPDX-License-Identifier: MIT
"""Small checks and conversions shared by the metrics and diagnostics of :mod:`invprior.priors`."""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = ["MIN_SAMPLES", "as_matrix", "check_pair", "reference_tensor", "to_numpy"]

MIN_SAMPLES = 10
"""Fewest samples a correlation-based score is computed from."""


def to_numpy(value: torch.Tensor | np.ndarray) -> np.ndarray:
    """A tensor (detached, on the CPU) or an array-like as a NumPy array, same dtype.

    Example:
        >>> to_numpy(torch.tensor([1.0, 2.0], requires_grad=True))
        array([1., 2.], dtype=float32)
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def as_matrix(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as a finite float64 matrix ``(n, k)``; a vector becomes one column.

    Args:
        name: The argument's name, for messages.
        array: Values, shape ``(n,)`` or ``(n, k)``.

    Raises:
        ValueError: More than two dimensions, or NaN or infinite values.
    """
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (n_samples, n_columns), got shape {a.shape}; "
            "stack one column per variable."
        )
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(
            f"`{name}` holds {int(bad.sum())} NaN or infinite values (first in row "
            f"{int(np.argwhere(bad)[0, 0])}); drop those samples before computing metrics."
        )
    return a


def reference_tensor(module: torch.nn.Module) -> torch.Tensor:
    """A floating-point buffer or parameter of ``module``: its dtype and device.

    A module with neither gives a float32 scalar on the CPU.
    """
    for tensor in itertools.chain(module.buffers(), module.parameters()):  # lazily: per call
        if torch.is_floating_point(tensor):
            return tensor
    return torch.zeros(())


def check_pair(factors: np.ndarray, latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``factors (n, K)`` and ``latents (n, L)``; return them as float64 matrices.

    Raises:
        ValueError: Different numbers of rows, fewer than ten samples, NaN/inf, a constant
            factor, or latents that are all constant.
    """
    f = as_matrix("factors", factors)
    z = as_matrix("latents", latents)
    if f.shape[0] != z.shape[0]:
        raise ValueError(
            f"`factors` has {f.shape[0]} rows but `latents` has {z.shape[0]}; pass one row "
            "per sample in both, in the same order."
        )
    if f.shape[0] < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples, got {f.shape[0]}.")
    constant = np.flatnonzero(np.ptp(f, axis=0) == 0)
    if constant.size:
        raise ValueError(
            f"factor column(s) {constant.tolist()} are constant, so no correlation or "
            "information with them is defined; drop those columns."
        )
    if np.all(np.ptp(z, axis=0) == 0):
        raise ValueError("every latent column is constant; the encoder carries no information.")
    return f, z
