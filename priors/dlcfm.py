# SPDX-License-Identifier: MIT
r"""DL-CFM: a flow-matching generator conditioned on a disentangled latent.

The generator keeps the disentangled latent :math:`z = (z_{aux}, z_{rec})` of a pretrained
:class:`~invprior.priors.AuxVAE` and corrects the small-scale structure of its decoder
:math:`D` (detail it smooths away, artefacts it adds) with a conditional flow:

.. math::

    x = D(z) + \sigma_r\,\Phi(\varepsilon; z, D(z)), \qquad
    \varepsilon \sim N(0, I_{ny \times nx}),

where :math:`\Phi` is a fixed-step ODE solve (:func:`invprior.priors.flow.integrate`) of a
velocity field :math:`v(t, r_t; z, D(z))` trained with
:func:`invprior.priors.flow.flow_matching_loss` on the standardised residuals
:math:`r = (x - D(\mu(x))) / \sigma_r` of the training fields, :math:`\mu(x)` the frozen
encoder mean and :math:`\sigma_r` the residuals' standard deviation. As a prior,
:math:`\varepsilon` is a latent site besides :math:`z`;
:class:`invprior.model.DisentangledPrior` adds it when a generator has ``eps_shape``.

Why a residual flow on a frozen Aux-VAE rather than a flow for the whole field trained
jointly with the encoder:

- the latent, and with it the named variables, :math:`a(u)`, the alignment and
  decorrelation penalties and the disentanglement scores, is exactly the shipped Aux-VAE's,
  so the two priors mean the same by ``x0`` or ``amplitude`` and can be compared on one
  inverse problem; joint training would let the flow-matching loss pull on the encoder
  and need the penalties re-tuned;
- the decoder already places the field (a source's position, size, strength): the flow
  gets :math:`D(z)` as an input channel and only learns the small, local remainder, the
  residual-corrective split of regression plus generative refinement used for
  km-scale weather downscaling [4]. A flow for the whole field must learn the placement
  too, a much harder regression for a small network and a short training budget;
- with :math:`\varepsilon = 0` (the conditional mean path, ``decode(..., eps=None)``) the
  map stays close to the Aux-VAE's, so MAP on it is fast and well started.

References:
    [1] Y. Lipman et al., "Flow Matching for Generative Modeling", ICLR (2023),
        https://arxiv.org/abs/2210.02747
    [2] A. Ganguli et al., "Enhancing Interpretability in Generative Modeling:
        Statistically Disentangled Latent Spaces Guided by Generative Factors in
        Scientific Datasets", arXiv:2507.00298 (2025).
    [3] E. Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer",
        AAAI (2018), https://arxiv.org/abs/1709.07871
    [4] M. Mardani et al., "Residual Corrective Diffusion Modeling for Km-scale
        Atmospheric Downscaling", Communications Earth & Environment 6 (2025),
        https://arxiv.org/abs/2309.15214
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator
from .flow import METHODS, integrate
from .vae import AuxVAE

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
    r"""A two-level U-Net velocity field :math:`v(t, x; z, c)` on a grid.

    The input field, two coordinate channels and ``context`` fields :math:`c` go through a
    FiLM residual block at full resolution, average pooling (ceil mode, so odd sides
    work), a block with twice the channels at half resolution, nearest upsampling back to
    the fine grid, concatenation with the skip connection, a last block and a 1x1
    convolution. The conditioning embedding is
    :math:`e = \mathrm{MLP}(\text{sinusoidal}(t)) + \mathrm{MLP}(z)`; every block is
    modulated by it. SiLU activations keep the field smooth in :math:`(t, x, z, c)`.

    Args:
        latent_dim: Size :math:`m \geq 1` of the conditioning latent.
        channels: Channels at full resolution (doubled at half resolution).
        embed: Width of the conditioning embedding (even).
        context: Number of context fields given to :meth:`forward`.

    Example:
        >>> net = VelocityUNet(latent_dim=3, channels=4, embed=8, context=1)
        >>> net(torch.tensor(0.5), torch.zeros(2, 5, 6), torch.zeros(2, 3),
        ...     torch.zeros(2, 1, 5, 6)).shape
        torch.Size([2, 5, 6])
    """

    def __init__(
        self, latent_dim: int, channels: int = 32, embed: int = 64, context: int = 0
    ) -> None:
        super().__init__()
        if latent_dim < 1 or channels < 1 or embed < 2 or embed % 2 or context < 0:
            raise ValueError(
                "need latent_dim >= 1, channels >= 1, an even embed >= 2 and context >= 0, "
                f"got {latent_dim}, {channels}, {embed} and {context}"
            )
        self.latent_dim, self.channels, self.embed = int(latent_dim), int(channels), int(embed)
        self.context = int(context)
        c = self.channels
        self.time_mlp = nn.Sequential(nn.Linear(embed, embed), nn.SiLU(), nn.Linear(embed, embed))
        self.latent_mlp = nn.Sequential(
            nn.Linear(latent_dim, embed), nn.SiLU(), nn.Linear(embed, embed)
        )
        self.inc = nn.Conv2d(3 + self.context, c, 3, padding=1)
        self.down = _FiLMBlock(c, c, embed)
        self.mid = _FiLMBlock(c, 2 * c, embed)
        self.up = _FiLMBlock(3 * c, c, embed)
        self.out = nn.Conv2d(c, 1, 1)

    def forward(
        self,
        t: torch.Tensor,
        x: torch.Tensor,
        z: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The velocity at time ``t``.

        Args:
            t: Time, shape broadcastable to ``(*batch,)``.
            x: Fields, shape ``(*batch, ny, nx)``.
            z: Conditioning latents, shape broadcastable to ``(*batch, m)``.
            context: Context fields, shape broadcastable to ``(*batch, context, ny, nx)``
                (None when the network has none).

        Returns:
            Velocity, shape ``(*batch, ny, nx)``.
        """
        if (context is None) != (self.context == 0):
            raise ValueError(f"this network takes {self.context} context fields")
        batch, grid = x.shape[:-2], x.shape[-2:]
        flat_t = t.expand(batch).reshape(-1)
        flat_z = z.expand(*batch, self.latent_dim).reshape(-1, self.latent_dim)
        cond = self.time_mlp(_time_features(flat_t, self.embed)) + self.latent_mlp(flat_z)
        ys = torch.linspace(-1, 1, grid[0], dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1, 1, grid[1], dtype=x.dtype, device=x.device)
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))
        h0 = x.reshape(-1, 1, *grid)
        parts = [h0, coords.expand(h0.shape[0], -1, -1, -1)]
        if context is not None:
            parts.append(
                context.expand(*batch, self.context, *grid).reshape(-1, self.context, *grid)
            )
        h1 = self.down(self.inc(torch.cat(parts, dim=1)), cond)
        h2 = self.mid(F.avg_pool2d(h1, 2, ceil_mode=True), cond)
        h2 = F.interpolate(h2, size=tuple(grid), mode="nearest")
        h = self.up(torch.cat([h1, h2], dim=1), cond)
        return self.out(F.silu(h)).reshape(*batch, *grid)


def _check_solver(steps: int, method: str) -> None:
    """Reject an unknown ODE method or a step count that is not a positive integer."""
    if method not in METHODS or int(steps) != steps or steps < 1:
        raise ValueError(
            f"need method in {sorted(METHODS)} and steps >= 1, got {method!r} and {steps!r}"
        )


class DLCFMGenerator(Generator):
    r"""The DL-CFM prior's generator :math:`x = D(z) + \sigma_r\,\Phi(\varepsilon; z, D(z))`.

    Implements :class:`~invprior.priors.Generator` with the named-variable interface and
    the encoder of the frozen Aux-VAE ``base`` (its decoder is :math:`D`), plus
    ``eps_shape`` (the grid shape): the base noise :math:`\varepsilon` is an extra latent
    of the map. The context field of the velocity is :math:`D(z)` standardised by the
    Aux-VAE's field offset and scale. Train with
    :func:`invprior.priors.train.train_dlcfm`.

    Args:
        base: The pretrained Aux-VAE (or its :meth:`~invprior.priors.AuxVAE.config`, for
            checkpoints); it is frozen and becomes part of this generator.
        channels: Channels of the :class:`VelocityUNet` at full resolution.
        embed: Width of its conditioning embedding.
        residual_scale: :math:`\sigma_r`, the scale of the residual the flow generates.
        steps: Number of solver steps (4-16 keep the map smooth and accurate).
        method: ``"heun"``, ``"midpoint"`` or ``"euler"``.

    Example:
        >>> from invprior.priors import GridSpec
        >>> base = AuxVAE(("x0",), ("m",), {"x0": (0.0, 1.0)}, [0.5], [0.3], rec_dim=2,
        ...               grid=GridSpec((8, 8)), channels=(4,), hidden=8)
        >>> g = DLCFMGenerator(base, channels=4, embed=8, steps=2)
        >>> g.decode(torch.zeros(5, 1), torch.zeros(5, 2)).shape
        torch.Size([5, 8, 8])
        >>> g.decode(torch.zeros(1), torch.zeros(2), eps=torch.randn(3, 8, 8)).shape
        torch.Size([3, 8, 8])
    """

    def __init__(
        self,
        base: AuxVAE | dict,
        channels: int = 16,
        embed: int = 64,
        residual_scale: float = 1.0,
        steps: int = 8,
        method: str = "midpoint",
    ) -> None:
        super().__init__()
        if residual_scale <= 0:
            raise ValueError(f"residual_scale must be positive, got {residual_scale}")
        _check_solver(steps, method)
        if isinstance(base, dict):
            base = AuxVAE.from_config(base)
        if not isinstance(base, AuxVAE):
            raise TypeError(f"base must be an AuxVAE or its config, got {type(base).__name__}")
        self.base = base.eval().requires_grad_(False)
        self._init_aux(
            base.aux_names, base.aux_units, base.aux_ranges, base.aux_mean, base.aux_std
        )
        self.rec_dim, self.grid, self.tau = base.rec_dim, base.grid, base.tau
        self.steps, self.method = int(steps), method
        self.velocity = VelocityUNet(self.aux_dim + self.rec_dim, channels, embed, context=1)
        self.register_buffer("residual_scale", torch.tensor(float(residual_scale)))

    @property
    def eps_shape(self) -> torch.Size:
        r"""Event shape of the base noise :math:`\varepsilon`, the grid shape ``(ny, nx)``."""
        return torch.Size(self.grid.shape)

    def with_steps(self, steps: int) -> DLCFMGenerator:
        """This generator with another number of solver steps; ``self`` is left unchanged.

        The result shares the frozen networks and buffers of ``self`` (no copy of the
        weights) and has its own ``steps`` and its own copy of :attr:`metadata`, so a loaded
        generator can be decoded with a cheaper or finer solve without being modified.

        Args:
            steps: Number of solver steps, at least 1.

        Returns:
            The generator whose :meth:`decode` takes ``steps`` steps.

        Raises:
            ValueError: If ``steps`` is not an integer >= 1.

        Example:
            >>> from invprior.priors import GridSpec
            >>> base = AuxVAE(("x0",), ("m",), {"x0": (0.0, 1.0)}, [0.5], [0.3], rec_dim=2,
            ...               grid=GridSpec((8, 8)), channels=(4,), hidden=8)
            >>> g = DLCFMGenerator(base, channels=4, embed=8, steps=8)
            >>> fast = g.with_steps(2)
            >>> (fast.steps, g.steps, fast.velocity is g.velocity)
            (2, 8, True)
        """
        _check_solver(steps, self.method)
        new = copy.copy(self)
        # The module's own containers (submodules, buffers, hooks, metadata) are copied
        # one level deep: the copy holds the same tensors and submodules in its own dicts.
        new.__dict__ = {
            key: copy.copy(value) if isinstance(value, dict | set) else value
            for key, value in vars(self).items()
        }
        new.steps = int(steps)
        return new

    def train(self, mode: bool = True) -> DLCFMGenerator:
        """Set the velocity's training mode; the Aux-VAE stays in eval mode."""
        super().train(mode)
        self.base.eval()
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean and log-variance of the Aux-VAE's :math:`q(z \mid x)` (see ``AuxVAE.encode``)."""
        return self.base.encode(x)

    def context(self, mean: torch.Tensor) -> torch.Tensor:
        r"""The velocity's context channel from a decoder field :math:`D(z)`.

        Args:
            mean: Decoder fields, shape ``(*batch, ny, nx)``.

        Returns:
            :math:`(D(z) - c) / s` with the Aux-VAE's offset and scale, shape
            ``(*batch, 1, ny, nx)``.
        """
        return ((mean - self.base.field_offset) / self.base.field_scale).unsqueeze(-3)

    def training_pairs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""What the flow is trained on for fields ``x``: :math:`(r, \mu(x), \text{context})`.

        Args:
            x: Fields, shape ``(n, ny, nx)``.

        Returns:
            The standardised residuals :math:`(x - D(\mu)) / \sigma_r`, shape
            ``(n, ny, nx)``; the encoder means :math:`\mu`, shape ``(n, m)``; the context
            fields, shape ``(n, 1, ny, nx)``.
        """
        with torch.no_grad():
            mu = self.base.encode(x)[0]
            mean = self.base.decode_latent(mu)
        return (x - mean) / self.residual_scale, mu, self.context(mean)

    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""The field :math:`D(z) + \sigma_r\,\Phi(\varepsilon; z, D(z))`, differentiable.

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
        z = torch.cat([z_aux.expand(*batch, -1), z_rec.expand(*batch, -1)], dim=-1)
        mean = self.base.decode_latent(z)
        if eps is None:
            eps = mean.new_zeros(*batch, *self.eps_shape)
        batch = torch.broadcast_shapes(batch, eps.shape[:-2])
        context = self.context(mean)

        def velocity(t: torch.Tensor, r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return self.velocity(t, r, z, context)

        r = integrate(velocity, eps.expand(*batch, -1, -1), z, self.steps, self.method)
        return mean + self.residual_scale.to(r) * r

    @classmethod
    def from_config(cls, config: dict) -> DLCFMGenerator:
        """An untrained network built from :meth:`config`'s output (for checkpoints)."""
        return cls(**config)

    def config(self) -> dict:
        """Constructor keyword arguments (JSON-ready), for the checkpoint sidecar."""
        return {
            "base": self.base.config(),
            "channels": self.velocity.channels,
            "embed": self.velocity.embed,
            "residual_scale": float(self.residual_scale),
            "steps": self.steps,
            "method": self.method,
        }
