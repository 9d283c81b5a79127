# SPDX-License-Identifier: MIT
r"""Convolutional VAEs on a grid: the Aux-VAE of [1] and the beta-VAE baseline of [2].

Both share one encoder/decoder. The encoder maps a field to the mean and log-variance of
a diagonal Gaussian :math:`q(z \mid x)` over :math:`z = (z_{aux}, z_{rec})` (auxiliary
block first); the decoder maps :math:`z` back to the field. Fields are standardised
with a scalar offset and scale of the training set, stored as buffers.

The Aux-VAE's prior is conditional on the named variables :math:`u`,

.. math::

    p(z \mid u) = N\big((a(u), 0),\ \operatorname{diag}(\tau^2 I_d, I_r)\big),

the beta-VAE's is :math:`N(0, I)` with no named variables. Training lives in
:mod:`invprior.priors.train`; a loaded generator is frozen and its ``decode`` is
deterministic.

References:
    [1] A. Ganguli et al., "Enhancing Interpretability in Generative Modeling:
        Statistically Disentangled Latent Spaces Guided by Generative Factors in
        Scientific Datasets", arXiv:2507.00298 (2025).
    [2] I. Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained
        Variational Framework", ICLR (2017).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from .base import Generator, GridSpec, as_grid

__all__ = ["REC_SHIFT_DEGREE", "AuxVAE", "BetaVAE"]

#: Largest power of ``z_aux`` in the residual shift of :class:`AuxVAE`.
REC_SHIFT_DEGREE = 3


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU())


def _up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU())


class _ConvVAE(Generator):
    r"""Encoder/decoder pair shared by :class:`AuxVAE` and :class:`BetaVAE`.

    The encoder sees the standardised field plus two coordinate channels (so positions
    are easy to read off); ``len(channels)`` stride-2 convolutions halve the grid each
    time, so both grid sides must be divisible by ``2 ** len(channels)``. The decoder
    mirrors it with stride-2 transposed convolutions (kernel 4, so every output node gets
    the same overlap) that halve the channels towards the fine grid; with SiLU activations
    the decoder is smooth in :math:`z`, as gradient-based posterior sampling wants.

    The last layer's output :math:`y` becomes the field :math:`x = c + s\,y` (offset
    :math:`c`, scale :math:`s`), or :math:`x = s \operatorname{softplus}(y)` with
    ``positive=True`` for non-negative fields such as sources: large flat zero regions
    are then reproduced without ripple, which matters for SSIM-type fidelity.
    """

    def __init__(
        self,
        grid: GridSpec,
        latent_dim: int,
        channels: Sequence[int],
        hidden: int,
        field_offset: float,
        field_scale: float,
        positive: bool,
    ) -> None:
        super().__init__()
        ny, nx = grid.shape
        step = 2 ** len(channels)
        if not channels or ny % step or nx % step:
            raise ValueError(
                f"grid shape {grid.shape} must be divisible by 2**len(channels) = {step}; "
                "use fewer channels or a grid with sides divisible by it"
            )
        if field_scale <= 0:
            raise ValueError(f"field_scale must be positive, got {field_scale}")
        self.grid = grid
        self.channels = tuple(int(c) for c in channels)
        self.hidden = int(hidden)
        self.positive = bool(positive)
        self._coarse = (self.channels[-1], ny // step, nx // step)
        flat = self.channels[-1] * (ny // step) * (nx // step)
        widths = (3, *self.channels)
        self.encoder = nn.Sequential(
            *[_conv_block(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)],
            nn.Flatten(),
            nn.Linear(flat, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )
        back = self.channels[::-1]
        ups = (*back[1:], max(back[-1] // 2, 4))
        self.decoder_fc = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, flat), nn.SiLU()
        )
        self.decoder_conv = nn.Sequential(
            *[_up_block(a, b) for a, b in zip(back, ups, strict=True)],
            nn.Conv2d(ups[-1], 1, 3, padding=1),
        )
        self.register_buffer("field_offset", torch.tensor(float(field_offset)))
        self.register_buffer("field_scale", torch.tensor(float(field_scale)))
        y, x = torch.meshgrid(torch.linspace(-1, 1, ny), torch.linspace(-1, 1, nx), indexing="ij")
        self.register_buffer("coords", torch.stack([x, y]), persistent=False)

    @property
    def latent_dim(self) -> int:
        """Size of the whole latent, ``aux_dim + rec_dim``."""
        return self.aux_dim + self.rec_dim

    def _check_dtype(self, t: torch.Tensor, name: str) -> None:
        dtype = self.field_scale.dtype
        if t.dtype != dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but the generator's weights are {dtype}; "
                f"call generator.to({t.dtype}) first"
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean and log-variance of :math:`q(z \mid x)`, auxiliary block first.

        Args:
            x: Fields, shape ``(*batch, ny, nx)``.

        Returns:
            ``(mu, logvar)``, each shape ``(*batch, aux_dim + rec_dim)``.
        """
        if x.shape[-2:] != tuple(self.grid.shape):
            raise ValueError(f"x must have shape (*batch, {self.grid.shape}), got {x.shape}")
        self._check_dtype(x, "x")
        batch = x.shape[:-2]
        out = self.encoder(self.encoder_input(x))
        mu, logvar = out.chunk(2, dim=-1)
        return mu.reshape(*batch, -1), logvar.reshape(*batch, -1)

    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder network sees: the standardised field and two coordinate channels.

        Args:
            x: Fields, shape ``(*batch, ny, nx)``.

        Returns:
            Shape ``(n, 3, ny, nx)`` with ``n`` the flattened batch.
        """
        flat = ((x - self.field_offset) / self.field_scale).reshape(-1, 1, *x.shape[-2:])
        coords = self.coords.to(x.dtype).expand(flat.shape[0], -1, -1, -1)
        return torch.cat([flat, coords], dim=1)

    def decode(
        self, z_aux: torch.Tensor, z_rec: torch.Tensor, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The field generated by a latent (see :meth:`Generator.decode`).

        Args:
            z_aux: Auxiliary block, shape ``(*batch, aux_dim)``.
            z_rec: Residual block, shape ``(*batch, rec_dim)``.
            eps: None: a VAE decodes without base noise.

        Returns:
            Field, shape ``(*batch, ny, nx)``.
        """
        self._refuse_eps(eps)
        if z_aux.shape[-1] != self.aux_dim or z_rec.shape[-1] != self.rec_dim:
            raise ValueError(
                f"expected z_aux (*batch, {self.aux_dim}) and z_rec (*batch, {self.rec_dim}), "
                f"got {tuple(z_aux.shape)} and {tuple(z_rec.shape)}"
            )
        batch = torch.broadcast_shapes(z_aux.shape[:-1], z_rec.shape[:-1])
        z = torch.cat([z_aux.expand(*batch, -1), z_rec.expand(*batch, -1)], dim=-1)
        return self.decode_latent(z)

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Decode the concatenated latent ``z = (z_aux, z_rec)``, shape ``(*batch, m)``."""
        self._check_dtype(z, "z")
        batch = z.shape[:-1]
        h = self.decoder_fc(z.reshape(-1, z.shape[-1])).reshape(-1, *self._coarse)
        y = self.decoder_conv(h).squeeze(1)
        if self.positive:
            out = nn.functional.softplus(y) * self.field_scale
        else:
            out = y * self.field_scale + self.field_offset
        return out.reshape(*batch, *out.shape[-2:])

    @abstractmethod
    def conditional_prior_moments(
        self, u: torch.Tensor | None, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean and variance of the latent's prior :math:`p(z \mid u)`, each ``(n, latent_dim)``.

        The diagonal Gaussian the KL term of the training loss is taken against.

        Args:
            u: Named variables in physical units, shape ``(n, aux_dim)`` (ignored, may be
                ``None``, when ``aux_dim == 0``).
            like: Tensor whose batch size, dtype and device the result takes, ``(n, m)``.
        """

    @classmethod
    def from_config(cls, config: dict) -> _ConvVAE:
        """An untrained network built from :meth:`config`'s output (for checkpoints)."""
        return cls(**config)

    def _net_config(self) -> dict:
        return {
            "grid": {"shape": list(self.grid.shape), "bbox": [list(p) for p in self.grid.bbox]},
            "channels": list(self.channels),
            "hidden": self.hidden,
            "field_offset": float(self.field_offset),
            "field_scale": float(self.field_scale),
            "positive": self.positive,
        }


class AuxVAE(_ConvVAE):
    r"""VAE with a latent block tied to named physical variables (Aux-VAE of [1]).

    Args:
        aux_names: Named variables, one latent coordinate each.
        aux_units: Their units.
        aux_ranges: Their physical ranges ``name -> (low, high)``.
        aux_mean: Training-set means of the named variables, for :math:`a(u)`.
        aux_std: Training-set standard deviations (positive).
        rec_dim: Size of the residual block :math:`z_{rec}`.
        grid: Grid of the fields (a :class:`GridSpec` or its dict form).
        channels: Encoder channels per stride-2 convolution.
        hidden: Width of the fully connected layers.
        tau: Standard deviation :math:`\tau` of :math:`z_{aux} \mid u`.
        field_offset: Field standardisation offset (training-set mean).
        field_scale: Field standardisation scale (training-set standard deviation).
        positive: Non-negative output, :math:`x = s\,\operatorname{softplus}(y)`.

    The residual block is made uncorrelated with polynomials of the auxiliary block by an
    exact, invertible shift :math:`z_{rec} = \tilde z_{rec} - W^T \phi(z_{aux})` between
    encoder and decoder (buffer ``rec_shift``, fitted after training); this enforces the
    inter-independence of [1] beyond what batch correlations can resolve.

    Example:
        >>> import torch
        >>> from invprior.priors import AuxVAE, GridSpec
        >>> g = AuxVAE(("x0",), ("m",), {"x0": (0.0, 1.0)}, [0.5], [0.3], rec_dim=2,
        ...            grid=GridSpec((16, 16)), channels=(8, 8))
        >>> g.decode(torch.zeros(5, 1), torch.zeros(5, 2)).shape
        torch.Size([5, 16, 16])
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
        channels: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 256,
        tau: float = 0.1,
        field_offset: float = 0.0,
        field_scale: float = 1.0,
        positive: bool = False,
    ) -> None:
        if len(aux_names) < 1:
            raise ValueError("AuxVAE needs at least one named variable; use BetaVAE for none")
        if rec_dim < 0 or tau <= 0:
            raise ValueError(f"need rec_dim >= 0 and tau > 0, got {rec_dim} and {tau}")
        super().__init__(
            as_grid(grid),
            len(aux_names) + rec_dim,
            channels,
            hidden,
            field_offset,
            field_scale,
            positive,
        )
        self._init_aux(aux_names, aux_units, aux_ranges, aux_mean, aux_std)
        self.rec_dim = int(rec_dim)
        self.tau = float(tau)
        n_features = 1 + REC_SHIFT_DEGREE * self.aux_dim
        self.register_buffer("rec_shift", torch.zeros(n_features, self.rec_dim))

    def rec_features(self, z_aux: torch.Tensor) -> torch.Tensor:
        r"""Polynomial features :math:`\phi(z_{aux}) = (1, z_{aux}, z_{aux}^2, z_{aux}^3)`.

        Args:
            z_aux: Shape ``(*batch, aux_dim)``.

        Returns:
            Shape ``(*batch, 1 + 3 aux_dim)``.
        """
        powers = [z_aux.pow(p) for p in range(1, REC_SHIFT_DEGREE + 1)]
        return torch.cat([torch.ones_like(z_aux[..., :1]), *powers], dim=-1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean and log-variance of :math:`q(z \mid x)`, auxiliary block first.

        The residual means are :math:`\mu_{rec} = \tilde\mu_{rec} - W^T \phi(\mu_{aux})`,
        with :math:`\tilde\mu_{rec}` the network's output and :math:`W` the buffer
        ``rec_shift`` (zero while training; see
        :func:`invprior.priors.train.fit_rec_shift`).

        Args:
            x: Fields, shape ``(*batch, ny, nx)``.

        Returns:
            ``(mu, logvar)``, each shape ``(*batch, aux_dim + rec_dim)``.
        """
        mu, logvar = super().encode(x)
        d = self.aux_dim
        shift = self.rec_features(mu[..., :d]) @ self.rec_shift.to(mu)
        return torch.cat([mu[..., :d], mu[..., d:] - shift], dim=-1), logvar

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        r"""Decode :math:`z = (z_{aux}, z_{rec})`, shape ``(*batch, m)``.

        The network sees :math:`(z_{aux}, z_{rec} + W^T \phi(z_{aux}))`, the inverse of
        the shift in :meth:`encode`, so reconstructions do not depend on :math:`W`.
        """
        d = self.aux_dim
        z_aux, z_rec = z[..., :d], z[..., d:]
        shift = self.rec_features(z_aux) @ self.rec_shift.to(z)
        return super().decode_latent(torch.cat([z_aux, z_rec + shift], dim=-1))

    def conditional_prior_moments(
        self, u: torch.Tensor | None, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The conditional prior :math:`N((a(u), 0), \operatorname{diag}(\tau^2 I, I))`."""
        if u is None or u.shape != (like.shape[0], self.aux_dim):
            got = None if u is None else tuple(u.shape)
            raise ValueError(f"u must have shape ({like.shape[0]}, {self.aux_dim}), got {got}")
        mean = torch.cat([self.to_latent(u.to(like)), like.new_zeros(len(like), self.rec_dim)], -1)
        var = torch.cat(
            [like.new_full((self.aux_dim,), self.tau**2), like.new_ones(self.rec_dim)]
        ).expand_as(like)
        return mean, var

    def config(self) -> dict:
        """Constructor keyword arguments (JSON-ready), for the checkpoint sidecar."""
        return {
            "aux_names": list(self.aux_names),
            "aux_units": list(self.aux_units),
            "aux_ranges": {k: list(v) for k, v in self.aux_ranges.items()},
            "aux_mean": self.aux_mean.tolist(),
            "aux_std": self.aux_std.tolist(),
            "rec_dim": self.rec_dim,
            "tau": self.tau,
            **self._net_config(),
        }


class BetaVAE(_ConvVAE):
    r"""The beta-VAE baseline of [2]: the same network, no named variables.

    The whole latent is the residual block, with prior :math:`N(0, I)`.

    Args:
        latent_dim: Size of the latent (``rec_dim``).
        grid: Grid of the fields (a :class:`GridSpec` or its dict form).
        channels: Encoder channels per stride-2 convolution.
        hidden: Width of the fully connected layers.
        field_offset: Field standardisation offset.
        field_scale: Field standardisation scale.
        positive: Non-negative output, :math:`x = s\,\operatorname{softplus}(y)`.
    """

    def __init__(
        self,
        latent_dim: int,
        grid: GridSpec | dict = GridSpec(),  # noqa: B008
        channels: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 256,
        field_offset: float = 0.0,
        field_scale: float = 1.0,
        positive: bool = False,
    ) -> None:
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {latent_dim}")
        super().__init__(
            as_grid(grid), latent_dim, channels, hidden, field_offset, field_scale, positive
        )
        self._init_aux((), (), {}, torch.zeros(0), torch.ones(0))
        self.rec_dim = int(latent_dim)

    def conditional_prior_moments(
        self, u: torch.Tensor | None, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The standard normal prior :math:`N(0, I)`; ``u`` is ignored."""
        return torch.zeros_like(like), torch.ones_like(like)

    def config(self) -> dict:
        """Constructor keyword arguments (JSON-ready), for the checkpoint sidecar."""
        return {"latent_dim": self.rec_dim, **self._net_config()}
