# SPDX-License-Identifier: MIT
r"""DL-CFM: a flow-matching generator conditioned on a disentangled latent.

A velocity field :math:`v(t, x_t; z)` on the grid, conditioned on
:math:`z = (z_{aux}, z_{rec})`, is trained with :func:`invprior.priors.flow.flow_matching_loss`;
the generator is the flow map

.. math::

    x = c + s\,\Phi(\varepsilon; z_{aux}, z_{rec}), \qquad \varepsilon \sim N(0, I_{ny \times nx}),

with :math:`\Phi` a fixed-step ODE solve (:func:`invprior.priors.flow.integrate`) in the
standardised field space (offset :math:`c`, scale :math:`s`). As a prior, :math:`\varepsilon`
is a latent site besides :math:`z`; :class:`invprior.model.DisentangledPrior` adds it when
a generator has ``eps_shape``.

The conditioning latent is that of a pretrained :class:`~invprior.priors.AuxVAE`: the
velocity field is trained on pairs :math:`(x, \mu(x))` of fields and *frozen* encoder
means (``vae.encode(x)[0]``), not jointly with the encoder. This keeps the disentangled
latent exactly that of the shipped Aux-VAE (same named variables, same :math:`a(u)`,
same alignment and decorrelation penalties, same disentanglement scores), so the named
sites mean the same under both priors and the two can be compared on one inverse problem;
the flow only replaces the decoder, giving sharper fields. Joint training would let the
flow-matching loss pull on the encoder and would need the penalties re-tuned.

References:
    [1] Y. Lipman et al., "Flow Matching for Generative Modeling", ICLR (2023),
        https://arxiv.org/abs/2210.02747
    [2] A. Ganguli et al., "Enhancing Interpretability in Generative Modeling:
        Statistically Disentangled Latent Spaces Guided by Generative Factors in
        Scientific Datasets", arXiv:2507.00298 (2025).
    [3] E. Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer",
        AAAI (2018), https://arxiv.org/abs/1709.07871
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator, GridSpec
from .flow import METHODS, integrate
from .vae import AuxVAE, _grid

__all__ = ["DLCFMGenerator", "VelocityUNet"]

_MAX_FREQUENCY = 30.0


def _time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    r"""Sinusoidal features :math:`(\sin(\omega_k t), \cos(\omega_k t))`, shape ``(*t, dim)``.

    Frequencies :math:`\omega_k = 30^{k / (dim/2 - 1)}`, :math:`k < dim/2`, from 1 to 30: a
    field no faster than that in :math:`t` stays accurate with 8-32 solver steps.
    """
    half = dim // 2
    k = torch.arange(half, dtype=t.dtype, device=t.device)
    freq = _MAX_FREQUENCY ** (k / max(half - 1, 1))
    angle = t.unsqueeze(-1) * freq
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class _FiLMBlock(nn.Module):
    r"""Residual block :math:`x + W_2 \sigma((1 + \gamma) \odot W_1 \sigma(x) + \beta)`.

    :math:`(\gamma, \beta)` is a linear function of the conditioning embedding (FiLM [3]).
    """

    def __init__(self, c_in: int, c_out: int, embed: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.film = nn.Linear(embed, 2 * c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond)[..., None, None].chunk(2, dim=1)
        h = self.conv1(F.silu(x)) * (1 + gamma) + beta
        return self.skip(x) + self.conv2(F.silu(h))


class VelocityUNet(nn.Module):
    r"""A two-level U-Net velocity field :math:`v(t, x; z)` on a grid.

    The input field and two coordinate channels go through a FiLM residual block at full
    resolution, average pooling (ceil mode, so odd sides work), a block with twice the
    channels at half resolution, nearest upsampling back to the fine grid, concatenation
    with the skip connection, a last block and a 1x1 convolution. The conditioning
    embedding is :math:`e = \mathrm{MLP}(\text{sinusoidal}(t)) + \mathrm{MLP}(z)`; every
    block is modulated by it. SiLU activations keep the field smooth in
    :math:`(t, x, z)`.

    Args:
        latent_dim: Size :math:`m \geq 1` of the conditioning latent.
        channels: Channels at full resolution (doubled at half resolution).
        embed: Width of the conditioning embedding (even).

    Example:
        >>> net = VelocityUNet(latent_dim=3, channels=4, embed=8)
        >>> net(torch.tensor(0.5), torch.zeros(2, 5, 6), torch.zeros(2, 3)).shape
        torch.Size([2, 5, 6])
    """

    def __init__(self, latent_dim: int, channels: int = 32, embed: int = 64) -> None:
        super().__init__()
        if latent_dim < 1 or channels < 1 or embed < 2 or embed % 2:
            raise ValueError(
                "need latent_dim >= 1, channels >= 1 and an even embed >= 2, got "
                f"{latent_dim}, {channels} and {embed}"
            )
        self.latent_dim, self.channels, self.embed = int(latent_dim), int(channels), int(embed)
        c = self.channels
        self.time_mlp = nn.Sequential(nn.Linear(embed, embed), nn.SiLU(), nn.Linear(embed, embed))
        self.latent_mlp = nn.Sequential(
            nn.Linear(latent_dim, embed), nn.SiLU(), nn.Linear(embed, embed)
        )
        self.inc = nn.Conv2d(3, c, 3, padding=1)
        self.down = _FiLMBlock(c, c, embed)
        self.mid = _FiLMBlock(c, 2 * c, embed)
        self.up = _FiLMBlock(3 * c, c, embed)
        self.out = nn.Conv2d(c, 1, 1)

    def forward(self, t: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The velocity at time ``t``.

        Args:
            t: Time, shape broadcastable to ``(*batch,)``.
            x: Fields, shape ``(*batch, ny, nx)``.
            z: Conditioning latents, shape broadcastable to ``(*batch, m)``.

        Returns:
            Velocity, shape ``(*batch, ny, nx)``.
        """
        batch, grid = x.shape[:-2], x.shape[-2:]
        flat_t = t.expand(batch).reshape(-1)
        flat_z = z.expand(*batch, self.latent_dim).reshape(-1, self.latent_dim)
        cond = self.time_mlp(_time_features(flat_t, self.embed)) + self.latent_mlp(flat_z)
        ys = torch.linspace(-1, 1, grid[0], dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1, 1, grid[1], dtype=x.dtype, device=x.device)
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))
        h0 = x.reshape(-1, 1, *grid)
        h0 = torch.cat([h0, coords.expand(h0.shape[0], -1, -1, -1)], dim=1)
        h1 = self.down(self.inc(h0), cond)
        h2 = self.mid(F.avg_pool2d(h1, 2, ceil_mode=True), cond)
        h2 = F.interpolate(h2, size=tuple(grid), mode="nearest")
        h = self.up(torch.cat([h1, h2], dim=1), cond)
        return self.out(F.silu(h)).reshape(*batch, *grid)


class DLCFMGenerator(Generator):
    r"""The DL-CFM prior's generator :math:`x = c + s\,\Phi(\varepsilon; z_{aux}, z_{rec})`.

    Implements :class:`~invprior.priors.Generator` with the named-variable interface of the
    Aux-VAE whose frozen encoder means condition the velocity field (build it with
    :meth:`from_auxvae`), plus ``eps_shape`` (the grid shape): the base noise
    :math:`\varepsilon` is an extra latent of the map.

    Args:
        aux_names: Named variables, one latent coordinate each.
        aux_units: Their units.
        aux_ranges: Their physical ranges ``name -> (low, high)``.
        aux_mean: Means of the named variables, for :math:`a(u)`.
        aux_std: Standard deviations (positive).
        rec_dim: Size of the residual block :math:`z_{rec}`.
        grid: Grid of the fields (a :class:`GridSpec` or its dict form).
        channels: Channels of the :class:`VelocityUNet` at full resolution.
        embed: Width of its conditioning embedding.
        tau: Standard deviation :math:`\tau` of :math:`z_{aux} \mid u` (the Aux-VAE's).
        field_offset: Field standardisation offset :math:`c`.
        field_scale: Field standardisation scale :math:`s`.
        steps: Number of solver steps (8-32 keep the map smooth and accurate).
        method: ``"heun"``, ``"midpoint"`` or ``"euler"``.

    Example:
        >>> g = DLCFMGenerator(("x0",), ("m",), {"x0": (0.0, 1.0)}, [0.5], [0.3], rec_dim=2,
        ...                    grid=GridSpec((6, 8)), channels=4, embed=8, steps=2)
        >>> g.decode(torch.zeros(5, 1), torch.zeros(5, 2)).shape
        torch.Size([5, 6, 8])
        >>> g.decode(torch.zeros(1), torch.zeros(2), eps=torch.randn(3, 6, 8)).shape
        torch.Size([3, 6, 8])
    """

    def __init__(
        self,
        aux_names: Sequence[str],
        aux_units: Sequence[str],
        aux_ranges: dict[str, Sequence[float]],
        aux_mean: Sequence[float],
        aux_std: Sequence[float],
        rec_dim: int,
        grid: GridSpec | dict = GridSpec(),  # noqa: B008
        channels: int = 32,
        embed: int = 64,
        tau: float = 0.1,
        field_offset: float = 0.0,
        field_scale: float = 1.0,
        steps: int = 16,
        method: str = "heun",
    ) -> None:
        super().__init__()
        if rec_dim < 0 or tau <= 0 or field_scale <= 0:
            raise ValueError(
                f"need rec_dim >= 0, tau > 0 and field_scale > 0, got {rec_dim}, {tau} and "
                f"{field_scale}"
            )
        if method not in METHODS or int(steps) != steps or steps < 1:
            raise ValueError(
                f"need method in {sorted(METHODS)} and steps >= 1, got {method!r} and {steps!r}"
            )
        self._init_aux(aux_names, aux_units, aux_ranges, aux_mean, aux_std)
        self.rec_dim, self.grid, self.tau = int(rec_dim), _grid(grid), float(tau)
        self.steps, self.method = int(steps), method
        self.velocity = VelocityUNet(self.aux_dim + self.rec_dim, channels, embed)
        self.register_buffer("field_offset", torch.tensor(float(field_offset)))
        self.register_buffer("field_scale", torch.tensor(float(field_scale)))

    @property
    def eps_shape(self) -> torch.Size:
        r"""Event shape of the base noise :math:`\varepsilon`, the grid shape ``(ny, nx)``."""
        return torch.Size(self.grid.shape)

    @classmethod
    def from_auxvae(cls, vae: AuxVAE, **kwargs: int | float | str) -> DLCFMGenerator:
        """An untrained generator with the latent interface of a pretrained Aux-VAE.

        Copies the named variables, :math:`a(u)`, ``rec_dim``, ``tau``, the grid and the
        field standardisation; ``kwargs`` are the remaining constructor arguments
        (``channels``, ``embed``, ``steps``, ``method``). The output of a ``positive``
        Aux-VAE is non-negative by construction; the flow's is not, it only learns to be
        close to non-negative from the data.
        """
        vae_config = vae.config()
        shared = ("aux_names", "aux_units", "aux_ranges", "aux_mean", "aux_std", "rec_dim")
        shared += ("grid", "tau", "field_offset", "field_scale")
        return cls(**{k: vae_config[k] for k in shared}, **kwargs)

    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""The field :math:`c + s\,\Phi(\varepsilon; z)`, differentiable in every input.

        With ``eps=None`` the solve starts from :math:`\varepsilon = 0`, the mean of the
        base distribution: the *conditional mean path*. It is deterministic in :math:`z`
        and needs no noise site, which makes MAP fast, but it is an approximation: the
        flow of the mean noise is not the conditional mean field :math:`E[x \mid z]`, nor
        a sample, and the posterior it defines ignores the field variability that
        :math:`\varepsilon` carries.

        Args:
            z_aux: Auxiliary block, shape ``(*batch, aux_dim)``.
            z_rec: Residual block, shape ``(*batch, rec_dim)``.
            eps: Base noise, shape ``(*batch, ny, nx)``, or None for the mean path.

        Returns:
            Field, shape ``(*batch, ny, nx)`` (the batch shapes broadcast).
        """
        if z_aux.shape[-1] != self.aux_dim or z_rec.shape[-1] != self.rec_dim:
            raise ValueError(
                f"expected z_aux (*batch, {self.aux_dim}) and z_rec (*batch, {self.rec_dim}), "
                f"got {tuple(z_aux.shape)} and {tuple(z_rec.shape)}"
            )
        if eps is not None and eps.shape[-2:] != self.eps_shape:
            raise ValueError(
                f"eps must have shape (*batch, {tuple(self.eps_shape)}), got {tuple(eps.shape)}"
            )
        batch = torch.broadcast_shapes(z_aux.shape[:-1], z_rec.shape[:-1])
        if eps is None:
            eps = z_rec.new_zeros(*batch, *self.eps_shape)
        batch = torch.broadcast_shapes(batch, eps.shape[:-2])
        z = torch.cat([z_aux.expand(*batch, -1), z_rec.expand(*batch, -1)], dim=-1)
        x = integrate(self.velocity, eps.expand(*batch, -1, -1), z, self.steps, self.method)
        return self.field_offset.to(x) + self.field_scale.to(x) * x

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        r"""Fields in the flow's space, :math:`(x - c) / s`, shape ``(*batch, ny, nx)``.

        Train with ``flow_matching_loss(g.velocity, g.standardise(x), vae.encode(x)[0])``.
        """
        return (x - self.field_offset.to(x)) / self.field_scale.to(x)

    @classmethod
    def from_config(cls, config: dict) -> DLCFMGenerator:
        """An untrained network built from :meth:`config`'s output (for checkpoints)."""
        return cls(**config)

    def config(self) -> dict:
        """Constructor keyword arguments (JSON-ready), for the checkpoint sidecar."""
        return {
            "aux_names": list(self.aux_names),
            "aux_units": list(self.aux_units),
            "aux_ranges": {k: list(v) for k, v in self.aux_ranges.items()},
            "aux_mean": self.aux_mean.tolist(),
            "aux_std": self.aux_std.tolist(),
            "rec_dim": self.rec_dim,
            "grid": {"shape": list(self.grid.shape), "bbox": [list(p) for p in self.grid.bbox]},
            "channels": self.velocity.channels,
            "embed": self.velocity.embed,
            "tau": self.tau,
            "field_offset": float(self.field_offset),
            "field_scale": float(self.field_scale),
            "steps": self.steps,
            "method": self.method,
        }
