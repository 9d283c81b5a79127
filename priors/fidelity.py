# SPDX-License-Identifier: MIT
r"""Sample fidelity of a generative prior against held-out fields.

Three views of how close the prior's draws :math:`x \sim G_\# p(z)` are to the data:

- **Radially averaged power spectrum** :math:`P(k)`: the squared modulus of the 2-D DFT of
  each field (mean removed), averaged over fields and over the rings
  :math:`k - 1/2 \le |\kappa| < k + 1/2` of integer wavenumber, :math:`1 \le k \le
  \min(ny, nx)/2`. ``spectrum_error`` is the mean over :math:`k` of
  :math:`|\log_{10} P_G(k) - \log_{10} P_{data}(k)|`: a decoder that smooths loses power
  at high :math:`k` and scores badly there whatever its pixel error.
- **Pixel-wise moments**: the relative :math:`L^2` errors of the mean and the standard
  deviation maps, :math:`\|\bar x_G - \bar x\| / \|\bar x\|` and likewise for the std.
- **Energy distance** [1] on a fixed feature map: fields average-pooled by 4 (a 16 x 16
  picture of a 64 x 64 field) and divided by the data's pixel standard deviation,

  .. math::

      D^2 = 2 E\|f(X) - f(Y)\| - E\|f(X) - f(X')\| - E\|f(Y) - f(Y')\|,

  estimated with U-statistics (:math:`X` data, :math:`Y` prior draws); zero iff the
  feature distributions agree. It plays the part of FID without a pretrained network.

References:
    [1] G. J. Szekely, M. L. Rizzo, "Energy statistics: A class of statistics based on
        distances", Journal of Statistical Planning and Inference 143 (2013) 1249-1272.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .arrays import reference_tensor
from .base import Generator

__all__ = [
    "energy_distance",
    "fidelity_scores",
    "plot_fidelity",
    "pooled_features",
    "prior_draws",
    "radial_power_spectrum",
    "spectrum_error",
]


def _fields(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite fields of shape (n >= 2, ny, nx), got {x.shape}")
    return x


def radial_power_spectrum(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of fields with their means removed.

    Args:
        fields: Shape ``(n, ny, nx)``.

    Returns:
        ``(k, power)``: integer wavenumbers ``1..min(ny, nx)//2`` and the mean power in
        each ring, averaged over the fields.

    Example:
        >>> x = np.cos(2 * np.pi * 3 * np.arange(16) / 16)[None, None, :].repeat(16, 1)
        >>> k, p = radial_power_spectrum(np.concatenate([x, x]))
        >>> int(k[np.argmax(p)])
        3
    """
    x = _fields("fields", fields)
    ny, nx = x.shape[1:]
    spec = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(ny) * ny, np.fft.fftfreq(nx) * nx, indexing="ij")
    ring = np.rint(np.hypot(ky, kx)).astype(int)
    k = np.arange(1, min(ny, nx) // 2 + 1)
    mean_spec = spec.mean(axis=0)
    power = np.array([mean_spec[ring == kk].mean() for kk in k])
    return k, power


def spectrum_error(fields: np.ndarray, reference: np.ndarray) -> float:
    r"""Mean over wavenumbers of :math:`|\log_{10} P(k) - \log_{10} P_{ref}(k)|`."""
    _, p = radial_power_spectrum(fields)
    _, q = radial_power_spectrum(reference)
    tiny = np.finfo(np.float64).tiny
    return float(np.mean(np.abs(np.log10(np.maximum(p, tiny)) - np.log10(np.maximum(q, tiny)))))


def pooled_features(fields: np.ndarray, scale: float, pool: int = 4) -> np.ndarray:
    """Average-pooled fields divided by ``scale``, flattened: shape ``(n, features)``.

    Args:
        fields: Shape ``(n, ny, nx)``; sides not divisible by ``pool`` are cropped.
        scale: Positive divisor (the data's pixel standard deviation).
        pool: Pooling window.
    """
    x = _fields("fields", fields)
    if scale <= 0 or pool < 1:
        raise ValueError(f"need scale > 0 and pool >= 1, got {scale} and {pool}")
    n, ny, nx = x.shape
    x = x[:, : ny - ny % pool, : nx - nx % pool]
    x = x.reshape(n, ny // pool, pool, nx // pool, pool).mean(axis=(2, 4))
    return x.reshape(n, -1) / scale


def _mean_distance(a: np.ndarray, b: np.ndarray, same: bool) -> float:
    d = torch.cdist(torch.as_tensor(a), torch.as_tensor(b)).numpy()
    if same:
        n = len(a)
        return float(d.sum() / (n * (n - 1)))
    return float(d.mean())


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    r"""Squared energy distance :math:`D^2` between two samples of feature vectors.

    Args:
        a: Shape ``(n, d)``, ``n >= 2``.
        b: Shape ``(m, d)``, ``m >= 2``.

    Returns:
        The unbiased (U-statistic) estimate; it can be slightly negative when the
        distributions agree.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> same = energy_distance(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)))
        >>> shifted = energy_distance(rng.normal(size=(500, 2)), rng.normal(1, 1, (500, 2)))
        >>> abs(same) < 0.02 < shifted
        True
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (n >= 2, d) samples, got {a.shape} and {b.shape}")
    cross = _mean_distance(a, b, same=False)
    return 2 * cross - _mean_distance(a, a, same=True) - _mean_distance(b, b, same=True)


def prior_draws(generator: Generator, n: int, seed: int = 0, batch_size: int = 100) -> np.ndarray:
    r"""Fields drawn from the generator's prior, shape ``(n, ny, nx)``.

    Named variables uniform on their recorded ranges, :math:`z_{aux} = a(u) + \tau e`,
    :math:`z_{rec} \sim N(0, I)` and, for a generator whose ``eps_shape`` is not None,
    :math:`\varepsilon \sim N(0, I)` (the default priors of
    :class:`invprior.model.DisentangledPrior`).

    Args:
        generator: The generator (with at least one named variable).
        n: Number of draws.
        seed: Seed of the draws.
        batch_size: Fields decoded at once.
    """
    if generator.aux_dim < 1 or n < 1:
        raise ValueError("prior_draws needs a generator with named variables and n >= 1")
    ref = reference_tensor(generator)
    rng = torch.Generator().manual_seed(seed)
    bounds = torch.tensor([generator.aux_ranges[k] for k in generator.aux_names]).double()
    low, high = bounds[:, 0], bounds[:, 1]
    u = low + (high - low) * torch.rand(n, generator.aux_dim, generator=rng, dtype=torch.float64)
    e = torch.randn(n, generator.aux_dim, generator=rng, dtype=torch.float64)
    z_rec = torch.randn(n, generator.rec_dim, generator=rng, dtype=torch.float64)
    eps_shape = generator.eps_shape
    eps = None if eps_shape is None else torch.randn(n, *eps_shape, generator=rng)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            sl = slice(i, i + batch_size)
            z_aux = generator.to_latent(u[sl].to(ref)) + generator.tau * e[sl].to(ref)
            eps_b = None if eps is None else eps[sl].to(ref)
            out.append(generator.decode(z_aux, z_rec[sl].to(ref), eps_b).double().cpu().numpy())
    return np.concatenate(out)


def fidelity_scores(samples: np.ndarray, data: np.ndarray) -> dict:
    """The fidelity scores of prior draws ``samples`` against held-out ``data``.

    Args:
        samples: Prior draws, shape ``(n, ny, nx)``.
        data: Held-out fields, shape ``(m, ny, nx)``, the same grid.

    Returns:
        ``{"spectrum_error", "mean_map_error", "std_map_error", "energy_distance", "n"}``.
    """
    x, y = _fields("samples", samples), _fields("data", data)
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"samples on grid {x.shape[1:]} but data on {y.shape[1:]}")
    scale = float(y.std())

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    return {
        "spectrum_error": spectrum_error(x, y),
        "mean_map_error": rel(x.mean(0), y.mean(0)),
        "std_map_error": rel(x.std(0), y.std(0)),
        "energy_distance": energy_distance(pooled_features(x, scale), pooled_features(y, scale)),
        "n": int(min(len(x), len(y))),
    }


def plot_fidelity(data: np.ndarray, samples: dict[str, np.ndarray], show: int = 4) -> Figure:
    """Power spectra, mean and std maps and a few draws of each prior beside the data.

    Args:
        data: Held-out fields, shape ``(m, ny, nx)``.
        samples: Prior name -> draws, each shape ``(n, ny, nx)``.
        show: Draws shown per prior.
    """
    sets = {"data": _fields("data", data), **{k: _fields(k, v) for k, v in samples.items()}}
    fig = Figure(figsize=(2.2 * (3 + show), 2.2 * len(sets) + 3.0), layout="constrained")
    grid = fig.add_gridspec(len(sets) + 1, 3 + show, height_ratios=[1.6] + [1] * len(sets))
    ax = fig.add_subplot(grid[0, :])
    for name, x in sets.items():
        k, p = radial_power_spectrum(x)
        ax.loglog(k, p, label=name, lw=2 if name == "data" else 1.2)
    ax.set(xlabel="wavenumber k", ylabel="P(k)", title="radially averaged power spectrum")
    ax.legend()
    field_range = tuple(np.quantile(sets["data"], [0.005, 0.995]))
    std_range = (0.0, float(sets["data"].std(0).max()))
    for row, (name, x) in enumerate(sets.items(), start=1):
        panels = [(x.mean(0), "mean", field_range), (x.std(0), "std", std_range)]
        panels += [(x[i], f"draw {i}", field_range) for i in range(min(show, len(x)))]
        for col, (img, title, (low, high)) in enumerate(panels):
            a = fig.add_subplot(grid[row, col if col < 2 else col + 1])
            a.imshow(img, origin="lower", cmap="viridis", vmin=low, vmax=high)
            a.set_xticks([])
            a.set_yticks([])
            a.set_title(f"{name}: {title}", fontsize=8)
    return fig
