# SPDX-License-Identifier: MIT
r"""The source simulator's own prior, written as a :class:`~invprior.priors.Generator`.

:func:`~invprior.priors.simulate.simulate_sources` draws 14 independent uniform factors
(:data:`~invprior.priors.simulate.SOURCE_PARAMETERS`) and evaluates the source model
:func:`~invprior.priors.simulate.source_fields` at them. As a generator:

.. math::

    z_{aux} = u_{named}, \qquad
    u_k = l_k + (h_k - l_k)\,\Phi(z_{rec, k}) \text{ for the unnamed factors}, \qquad
    x = \text{source\_fields}(u),

with :math:`\Phi` the standard normal CDF and :math:`(l_k, h_k)` the factor's range on the
grid. The named block *is* the named parameters (:meth:`to_latent` is the identity) and
the generator declares :math:`\tau = 0`, so
:class:`~invprior.model.DisentangledPrior` ties it to the named sites exactly
(:math:`z_{aux} = a(u)`, no ``e_aux`` site); with their default Uniform priors over
:attr:`aux_ranges`, and :math:`z_{rec} \sim N(0, I)` mapping onto Uniform ranges through
:math:`\Phi`, the prior of the field is exactly the simulator's. The library's MAP,
Laplace and NUTS then give the exact-prior posterior of a source study: the yardstick for a
learned prior (``examples/simulator_posterior.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import Generator, GridSpec, as_grid
from .simulate import SOURCE_PARAMETERS, physical_ranges, source_fields

__all__ = ["SimulatorGenerator"]


class SimulatorGenerator(Generator):
    r"""The source simulator's exact prior: named factors as ``z_aux``, the rest probit.

    ``aux_names`` are the named factors of
    :data:`~invprior.priors.simulate.SOURCE_PARAMETERS` (``x0, y0, amplitude, width``) and
    ``z_aux`` holds them in physical units; ``z_rec`` (``rec_dim = 10``) holds the unnamed
    factors (:attr:`rec_names`) in probit coordinates. No weights: the buffers are the
    factor ranges, float64 (``.to(dtype)`` converts them, and ``decode`` follows its
    inputs' dtype and device).

    Args:
        grid: The grid of the fields; positions and widths scale with its bounding box as in
            :func:`~invprior.priors.simulate.simulate_sources`.

    Attributes:
        rec_names: The unnamed factors, in the order of ``z_rec``.
        rec_ranges: Physical range ``(low, high)`` of each unnamed factor.
        tau: 0: the named sites fix ``z_aux`` exactly.

    Example:
        >>> gen = SimulatorGenerator(GridSpec((16, 16)))
        >>> gen.aux_names, gen.rec_dim, gen.tau
        (('x0', 'y0', 'amplitude', 'width'), 10, 0.0)
        >>> z_aux = torch.tensor([[0.5, 0.5, 1.0, 0.08]], dtype=torch.float64)
        >>> gen.decode(z_aux, torch.zeros(1, 10, dtype=torch.float64)).shape
        torch.Size([1, 16, 16])
    """

    tau = 0.0

    def __init__(self, grid: GridSpec = GridSpec()) -> None:  # noqa: B008
        super().__init__()
        if not isinstance(grid, GridSpec):
            raise TypeError(
                f"grid must be a GridSpec, got {type(grid).__name__}; pass "
                "GridSpec(shape=(ny, nx), bbox=((xmin, ymin), (xmax, ymax)))"
            )
        ranges = physical_ranges(SOURCE_PARAMETERS, grid)
        names = tuple(k for k, v in SOURCE_PARAMETERS.items() if v[3])
        self.rec_names = tuple(k for k in SOURCE_PARAMETERS if k not in names)
        n = len(names)
        self._init_aux(
            names,
            tuple(SOURCE_PARAMETERS[k][2] for k in names),
            {k: ranges[k] for k in names},
            torch.zeros(n, dtype=torch.float64),
            torch.ones(n, dtype=torch.float64),
        )
        bounds = torch.tensor([ranges[k] for k in self.rec_names], dtype=torch.float64)
        self.register_buffer("rec_low", bounds[:, 0].clone())
        self.register_buffer("rec_span", bounds[:, 1] - bounds[:, 0])
        self.rec_ranges = {k: ranges[k] for k in self.rec_names}
        self.rec_dim = len(self.rec_names)
        self.grid = grid

    def factors(self, z_aux: torch.Tensor, z_rec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every factor of :data:`SOURCE_PARAMETERS` in physical units, in its order.

        Args:
            z_aux: Named factors, shape ``(*batch, 4)``.
            z_rec: Probit coordinates of the unnamed factors, shape ``(*batch, 10)``.

        Returns:
            ``{name: values}``, each shape ``(*batch,)``.
        """
        named = self.to_physical(z_aux)
        rest = self.rec_low.type_as(z_rec) + self.rec_span.type_as(z_rec) * torch.special.ndtr(
            z_rec
        )
        values = dict(zip(self.aux_names, named.unbind(-1), strict=True))
        values |= dict(zip(self.rec_names, rest.unbind(-1), strict=True))
        return {k: values[k] for k in SOURCE_PARAMETERS}

    def latents(self, factors: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The inverse of :meth:`factors`: ``(z_aux, z_rec)`` of physical factor values.

        Args:
            factors: Every factor of :data:`SOURCE_PARAMETERS`, each shape ``(*batch,)``,
                inside its range (a value on a bound of an unnamed range maps to
                :math:`\pm\infty`).

        Returns:
            ``z_aux`` shape ``(*batch, 4)`` and ``z_rec`` shape ``(*batch, 10)``.
        """
        z_aux = self.to_latent(torch.stack([factors[k] for k in self.aux_names], -1))
        rest = torch.stack([factors[k] for k in self.rec_names], -1)
        unit = (rest - self.rec_low.type_as(rest)) / self.rec_span.type_as(rest)
        return z_aux, torch.special.ndtri(unit)

    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The simulator's field at the factors of a latent (:func:`source_fields`, in torch).

        Args:
            z_aux: Named factors, shape ``(*batch, 4)``.
            z_rec: Probit coordinates of the unnamed factors, shape ``(*batch, 10)``.
            eps: None: the simulator has no base noise besides its factors.

        Returns:
            Field, shape ``(*batch, ny, nx)``, on the inputs' dtype and device.
        """
        self._refuse_eps(eps)
        batch = torch.broadcast_shapes(z_aux.shape[:-1], z_rec.shape[:-1])
        z_aux = z_aux.expand(*batch, self.aux_dim).reshape(-1, self.aux_dim)
        flat = self.factors(z_aux, z_rec.expand(*batch, self.rec_dim).reshape(-1, self.rec_dim))
        return source_fields(flat, self.grid).reshape(*batch, *self.grid.shape)

    def config(self) -> dict:
        """Constructor arguments (JSON-ready), for checkpoints."""
        grid = self.grid
        return {"grid": {"shape": list(grid.shape), "bbox": [list(p) for p in grid.bbox]}}

    @classmethod
    def from_config(cls, config: dict) -> SimulatorGenerator:
        """The generator a :meth:`config` describes."""
        return cls(as_grid(config["grid"]))
