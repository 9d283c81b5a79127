# SPDX-License-Identifier: MIT
r"""The classical baseline: a Gaussian field prior written as a linear generator.

.. math::

    x = \bar x + L z_{rec}, \qquad z_{rec} \sim N(0, I_r), \qquad
    x \sim N(\bar x, L L^T),

on the same grid as the learned priors, with no named variables, so every inference
path runs on it unchanged. Two constructions:

- :meth:`GaussianFieldGenerator.from_samples`: the "oracle" Gaussian with the empirical mean
  and covariance of training fields, truncated to the principal modes that carry a
  given fraction of the variance (:math:`L = V_r \Lambda_r^{1/2}`);
- :meth:`GaussianFieldGenerator.matern`: a Matern covariance [1] with smoothness
  :math:`\nu \in \{3/2, 5/2\}`,

  .. math::

      k_{3/2}(d) = \sigma^2 (1 + \sqrt3 d / \ell)\, e^{-\sqrt3 d / \ell}, \qquad
      k_{5/2}(d) = \sigma^2 \big(1 + \sqrt5 d / \ell + 5 d^2 / (3 \ell^2)\big)\,
          e^{-\sqrt5 d / \ell},

  truncated to its leading ``rank`` eigenmodes on the grid nodes.

References:
    [1] C. E. Rasmussen and C. K. I. Williams, "Gaussian Processes for Machine
        Learning", MIT Press (2006), Eq. (4.17).
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Generator, GridSpec, as_grid

__all__ = ["GaussianFieldGenerator"]


def _truncate(
    eigvals: torch.Tensor, eigvecs: torch.Tensor, fraction: float | None, rank: int | None
) -> torch.Tensor:
    """``L = V_r diag(sqrt(lambda_r))`` from eigenpairs sorted in decreasing order."""
    eigvals = eigvals.clamp_min(0)
    if rank is None:
        share = eigvals.cumsum(0) / eigvals.sum()
        rank = int(torch.searchsorted(share, torch.tensor(fraction, dtype=share.dtype))) + 1
    rank = min(rank, int((eigvals > 0).sum()))
    return eigvecs[:, :rank] * eigvals[:rank].sqrt()


class GaussianFieldGenerator(Generator):
    r"""Linear Gaussian generator :math:`x = \bar x + L z_{rec}` (no named variables).

    Args:
        mean: Mean field :math:`\bar x`, shape ``(ny, nx)``.
        basis: Columns of :math:`L`, shape ``(ny * nx, rank)``.
        grid: Grid of the fields (a :class:`GridSpec` or its dict form).

    Example:
        >>> import torch
        >>> from invprior.priors import GaussianFieldGenerator, GridSpec
        >>> g = GaussianFieldGenerator.matern(GridSpec((8, 8)), 1.0, 0.3, nu=1.5, rank=5)
        >>> g.decode(torch.zeros(2, 0), torch.zeros(2, 5)).shape
        torch.Size([2, 8, 8])
    """

    def __init__(
        self,
        mean: torch.Tensor,
        basis: torch.Tensor,
        grid: GridSpec | dict = GridSpec(),  # noqa: B008
    ) -> None:
        super().__init__()
        grid = as_grid(grid)
        ny, nx = grid.shape
        if mean.shape != (ny, nx) or basis.ndim != 2 or basis.shape[0] != ny * nx:
            raise ValueError(
                f"for grid {grid.shape} expected mean ({ny}, {nx}) and basis ({ny * nx}, r), "
                f"got {tuple(mean.shape)} and {tuple(basis.shape)}"
            )
        self.grid = grid
        self.rec_dim = basis.shape[1]
        self._init_aux((), (), {}, mean.new_zeros(0), mean.new_ones(0))
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("basis", basis.detach().clone())

    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""The field :math:`\bar x + L z_{rec}`, shape ``(*batch, ny, nx)``; batches broadcast.

        Args:
            z_aux: Empty auxiliary block, shape ``(*batch, 0)``.
            z_rec: Residual block, shape ``(*batch, rec_dim)``.
            eps: None: the Gaussian field has no base noise besides ``z_rec``.
        """
        self._refuse_eps(eps)
        if z_aux.shape[-1] != 0 or z_rec.shape[-1] != self.rec_dim:
            raise ValueError(
                f"expected z_aux (*batch, 0) and z_rec (*batch, {self.rec_dim}), got "
                f"{tuple(z_aux.shape)} and {tuple(z_rec.shape)}"
            )
        batch = torch.broadcast_shapes(z_aux.shape[:-1], z_rec.shape[:-1])
        field = (z_rec @ self.basis.to(z_rec).T).reshape(*z_rec.shape[:-1], *self.grid.shape)
        return (self.mean.to(z_rec) + field).expand(*batch, *self.grid.shape)

    @property
    def covariance(self) -> torch.Tensor:
        """The (low-rank) covariance :math:`L L^T`, shape ``(ny * nx, ny * nx)``."""
        return self.basis @ self.basis.T

    def config(self) -> dict:
        """Constructor arguments other than the tensors (JSON-ready), for checkpoints."""
        grid = self.grid
        return {
            "grid": {"shape": list(grid.shape), "bbox": [list(p) for p in grid.bbox]},
            "rank": self.rec_dim,
        }

    @classmethod
    def from_config(cls, config: dict) -> GaussianFieldGenerator:
        """A zero generator of the right shapes; the checkpoint then fills the buffers."""
        grid = as_grid(config["grid"])
        ny, nx = grid.shape
        return cls(torch.zeros(ny, nx), torch.zeros(ny * nx, int(config["rank"])), grid)

    @classmethod
    def from_samples(
        cls,
        fields: np.ndarray | torch.Tensor,
        variance_fraction: float = 0.999,
        grid: GridSpec = GridSpec(),  # noqa: B008
    ) -> GaussianFieldGenerator:
        """The "oracle" Gaussian: empirical mean and covariance of ``fields``.

        Args:
            fields: Training fields, shape ``(n, ny, nx)``, ``n >= 2``.
            variance_fraction: Keep the fewest principal modes carrying this fraction of
                the total variance, in ``(0, 1]``.
            grid: The fields' grid.

        Returns:
            The generator, in the dtype of ``fields`` (float32 for numpy float32 input).
        """
        x = torch.as_tensor(fields)
        if x.ndim != 3 or x.shape[1:] != tuple(grid.shape) or len(x) < 2:
            raise ValueError(
                f"fields must have shape (n >= 2, {grid.shape}), got {tuple(x.shape)}"
            )
        if not 0 < variance_fraction <= 1:
            raise ValueError(f"variance_fraction must be in (0, 1], got {variance_fraction}")
        flat = x.reshape(len(x), -1).double()
        mean = flat.mean(0)
        centred = (flat - mean) / (len(x) - 1) ** 0.5
        if len(x) >= centred.shape[1]:
            eigvals, eigvecs = torch.linalg.eigh(centred.T @ centred)
            eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)
        else:
            # Eigenpairs of C = D^T D from the Gram matrix D D^T = U diag(lambda) U^T: the
            # eigenvectors of C are D^T U diag(lambda)^(-1/2), an n x n problem, not P x P.
            eigvals, u = torch.linalg.eigh(centred @ centred.T)
            eigvals, u = eigvals.flip(0), u.flip(1)
            keep = eigvals > eigvals[0] * torch.finfo(eigvals.dtype).eps * len(x)
            eigvals, eigvecs = eigvals[keep], centred.T @ u[:, keep] / eigvals[keep].sqrt()
        basis = _truncate(eigvals, eigvecs, variance_fraction, None)
        return cls(mean.reshape(grid.shape).to(x.dtype), basis.to(x.dtype), grid)

    @classmethod
    def matern(
        cls,
        grid: GridSpec,
        variance: float,
        length_scale: float,
        nu: float = 1.5,
        rank: int | None = None,
        variance_fraction: float = 0.999,
        mean: float = 0.0,
    ) -> GaussianFieldGenerator:
        r"""A zero-mean (or constant-mean) Matern field, truncated to its leading modes.

        Args:
            grid: The grid.
            variance: Marginal variance :math:`\sigma^2 > 0`.
            length_scale: :math:`\ell > 0`, in the grid's length units.
            nu: Smoothness, 1.5 or 2.5.
            rank: Number of modes; ``None`` keeps those carrying ``variance_fraction``.
            variance_fraction: Used when ``rank`` is ``None``.
            mean: Constant mean value.

        Returns:
            The generator in the default torch dtype.
        """
        if nu not in (1.5, 2.5):
            raise ValueError(f"nu must be 1.5 or 2.5, got {nu}")
        if variance <= 0 or length_scale <= 0:
            raise ValueError(
                f"variance and length_scale must be positive, got {variance}, {length_scale}"
            )
        if rank is not None and rank < 1:
            raise ValueError(f"rank must be positive or None, got {rank}")
        (x0, y0), (x1, y1) = grid.bbox
        ny, nx = grid.shape
        yy, xx = torch.meshgrid(
            torch.linspace(y0, y1, ny, dtype=torch.float64),
            torch.linspace(x0, x1, nx, dtype=torch.float64),
            indexing="ij",
        )
        pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
        d = torch.cdist(pts, pts)
        if nu == 1.5:
            s = np.sqrt(3.0) * d / length_scale
            cov = variance * (1 + s) * torch.exp(-s)
        else:
            s = np.sqrt(5.0) * d / length_scale
            cov = variance * (1 + s + s**2 / 3) * torch.exp(-s)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        basis = _truncate(eigvals.flip(0), eigvecs.flip(1), variance_fraction, rank)
        dtype = torch.get_default_dtype()
        return cls(torch.full((ny, nx), float(mean), dtype=dtype), basis.to(dtype), grid)
