# SPDX-License-Identifier: MIT
r"""The generator contract every prior in :mod:`invprior.priors` implements.

A generator maps a split latent :math:`z = (z_{aux}, z_{rec})` to a field on a
regular grid, :math:`x = G(z_{aux}, z_{rec})`. The auxiliary block is softly tied to
named physical variables :math:`u` through the affine standardisation
:math:`a(u) = (u - \mu_u) / \sigma_u`, with :math:`z_{aux} \mid u \sim N(a(u), \tau^2 I)`;
the residual block is :math:`z_{rec} \sim N(0, I)`.

Grid convention (shared with :mod:`invprior.pde`): ``field[..., i, j]`` is the value at
``(xmin + j * (xmax - xmin) / (nx - 1), ymin + i * (ymax - ymin) / (ny - 1))``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["Encoder", "Generator", "GridSpec", "as_grid", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device a ``device`` setting names: ``"auto"`` is CUDA when present, else CPU.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`.

    Raises:
        ValueError: For another name, or CUDA asked for on a machine without it.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return dev


@dataclass(frozen=True)
class GridSpec:
    """A regular grid of nodes including the boundary.

    Attributes:
        shape: ``(ny, nx)``.
        bbox: ``((xmin, ymin), (xmax, ymax))``.
    """

    shape: tuple[int, int] = (64, 64)
    bbox: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (1.0, 1.0))

    def __post_init__(self) -> None:
        ny, nx = self.shape
        if ny < 2 or nx < 2:
            raise ValueError(f"grid shape must be at least (2, 2), got {self.shape}")
        (x0, y0), (x1, y1) = self.bbox
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"grid bbox must have xmax > xmin and ymax > ymin, got {self.bbox}")


def as_grid(grid: GridSpec | dict) -> GridSpec:
    """The :class:`GridSpec` of a grid or of its dict form (as a checkpoint config holds it).

    Args:
        grid: A :class:`GridSpec`, returned as is, or ``{"shape": [ny, nx], "bbox": [[xmin,
            ymin], [xmax, ymax]]}``.

    Example:
        >>> as_grid({"shape": [8, 16], "bbox": [[0.0, 0.0], [2.0, 1.0]]})
        GridSpec(shape=(8, 16), bbox=((0.0, 0.0), (2.0, 1.0)))
    """
    if isinstance(grid, GridSpec):
        return grid
    return GridSpec(shape=tuple(grid["shape"]), bbox=tuple(tuple(p) for p in grid["bbox"]))


class Generator(nn.Module, ABC):
    r"""A frozen map from a split latent to a field on a grid.

    Subclasses call ``super().__init__()`` and :meth:`_init_aux` with the named variables'
    training statistics, and set ``rec_dim`` and ``grid``. The standardisation lives in
    buffers, so ``.to(device)`` moves it with the network. Optional capabilities are
    declared here with their neutral values, so callers read them without probing: a flow
    generator overrides :attr:`eps_shape`, one trained with another width sets ``tau``, and
    :func:`invprior.priors.load` fills ``metadata``. A generator with an encoder satisfies
    the :class:`Encoder` protocol.

    Attributes:
        aux_names: Names of the physical variables tied to ``z_aux``, one coordinate each.
        aux_units: Units of those variables.
        aux_ranges: Physical training range ``(low, high)`` of each variable.
        rec_dim: Size of the residual block ``z_rec``.
        grid: The grid the fields live on.
        tau: Standard deviation :math:`\tau` of :math:`z_{aux} \mid u` the generator was
            trained with; 0.1 for generators that record none (it plays no part without
            named variables).
        metadata: The checkpoint sidecar of a loaded generator (architecture, training
            data recipe, training settings, metrics, digests); ``{}`` for one built in
            memory.
    """

    aux_names: tuple[str, ...]
    aux_units: tuple[str, ...]
    aux_ranges: dict[str, tuple[float, float]]
    rec_dim: int
    grid: GridSpec
    tau: float = 0.1
    metadata: dict

    def __init__(self) -> None:
        super().__init__()
        self.metadata = {}

    @property
    def eps_shape(self) -> torch.Size | None:
        r"""Event shape of a base-noise latent :math:`\varepsilon` of ``decode``, else None.

        None here: ``decode(z_aux, z_rec)`` takes no noise. A flow generator
        (:class:`~invprior.priors.DLCFMGenerator`) returns the grid shape and its ``decode``
        takes ``eps`` of that event shape.
        """
        return None

    @property
    def training_data(self) -> dict:
        """The recipe of the training data recorded in :attr:`metadata` (``"data"``).

        The ``recipe`` of the :class:`~invprior.priors.FieldDataset` it was trained on
        (``simulator``, ``n``, ``seed``, ``parameters``); ``{}`` when it records none.
        """
        recipe = self.metadata.get("data")
        return dict(recipe) if isinstance(recipe, dict) else {}

    def _init_aux(
        self,
        names: Sequence[str],
        units: Sequence[str],
        ranges: Mapping[str, Sequence[float]],
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
    ) -> None:
        """Set the named variables and the buffers of :math:`a(u) = (u - mean) / std`.

        ``mean`` and ``std`` that are not tensors become tensors of the default dtype.
        """
        mean, std = (
            v if torch.is_tensor(v) else torch.tensor(v, dtype=torch.get_default_dtype())
            for v in (mean, std)
        )
        if not (len(names) == len(units) == mean.numel() == std.numel()):
            raise ValueError("aux names, units, mean and std must have one entry per variable")
        if (std <= 0).any():
            raise ValueError(f"aux std must be positive, got {std.tolist()}")
        self.aux_names = tuple(names)
        self.aux_units = tuple(units)
        self.aux_ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in ranges.items()}
        self.register_buffer("aux_mean", mean.detach().clone().reshape(-1))
        self.register_buffer("aux_std", std.detach().clone().reshape(-1))

    @property
    def aux_dim(self) -> int:
        """Size of the auxiliary block ``z_aux`` (one coordinate per named variable)."""
        return len(self.aux_names)

    def to_latent(self, u: torch.Tensor) -> torch.Tensor:
        r"""The affine map :math:`a(u)` from physical units to the latent scale.

        Args:
            u: Physical variables in ``aux_names`` order, shape ``(*batch, aux_dim)``.

        Returns:
            Latent means, shape ``(*batch, aux_dim)``.
        """
        return (u - self.aux_mean.type_as(u)) / self.aux_std.type_as(u)

    def to_physical(self, z_aux: torch.Tensor) -> torch.Tensor:
        r"""The inverse :math:`a^{-1}(z_{aux})`, shape ``(*batch, aux_dim)``."""
        return z_aux * self.aux_std.type_as(z_aux) + self.aux_mean.type_as(z_aux)

    @abstractmethod
    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""The field generated by a latent.

        One signature for every generator, so callers pass ``eps`` without asking which
        kind they hold: a generator whose :attr:`eps_shape` is not None (a flow) takes its
        base noise :math:`\varepsilon` there, and decodes its noise-free path for None; every
        other generator takes only None, and refuses a tensor (see :meth:`_refuse_eps`)
        rather than ignore noise the caller meant to use.

        Args:
            z_aux: Auxiliary block, shape ``(*batch, aux_dim)``.
            z_rec: Residual block, shape ``(*batch, rec_dim)``.
            eps: Base noise, shape ``(*batch, *eps_shape)``, for a generator with
                :attr:`eps_shape`; None otherwise.

        Returns:
            Field, shape ``(*batch, ny, nx)``, on the inputs' device and dtype.

        Raises:
            ValueError: If ``eps`` is given to a generator whose :attr:`eps_shape` is None.
        """

    def _refuse_eps(self, eps: torch.Tensor | None) -> None:
        """Raise unless ``eps`` is None: for :meth:`decode` of a generator without noise."""
        if eps is not None:
            raise ValueError(
                f"{type(self).__name__} has no base noise (eps_shape is None) but decode got "
                f"eps of shape {tuple(eps.shape)}; pass eps=None"
            )


@runtime_checkable
class Encoder(Protocol):
    r"""A generator with an amortised posterior :math:`q(z \mid x)` (the VAE family).

    ``isinstance(generator, Encoder)`` is true for generators that define ``encode``
    (:class:`~invprior.priors.AuxVAE`, :class:`~invprior.priors.BetaVAE`,
    :class:`~invprior.priors.HierarchicalVAE`, :class:`~invprior.priors.SemiSupervisedVAE`
    and :class:`~invprior.priors.DLCFMGenerator`, through its Aux-VAE), false for the
    Gaussian field prior.
    """

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean and log-variance of :math:`q(z \mid x)`, auxiliary block first.

        Args:
            x: Fields, shape ``(*batch, ny, nx)``.

        Returns:
            ``(mu, logvar)``, each shape ``(*batch, aux_dim + rec_dim)``.
        """
        ...
