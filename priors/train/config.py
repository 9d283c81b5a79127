# SPDX-License-Identifier: MIT
"""Configuration of VAE training, and the error a training loop raises when it diverges.

:class:`VAETrainConfig` is a frozen dataclass checked on construction (strict types, then
ranges); :class:`TrainingDivergedError` is raised by every training loop the first time
its loss or weights stop being finite.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ...validation import InputError, check_field_types

__all__ = ["TrainingDivergedError", "VAETrainConfig", "check_loss", "nonfinite_weights"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss or non-finite weights.

    Raised by :func:`~invprior.priors.train.train_vae` and
    :func:`~invprior.priors.train.train_dlcfm` the first time it happens, so no model with
    NaN or Inf weights is ever returned. The usual cause is a learning rate that is too
    large; the message names the epoch and step and suggests a smaller one.
    """


def check_loss(value: float, epoch: int, step: int | None, learning_rate: float) -> None:
    """Raise :class:`TrainingDivergedError` unless the loss ``value`` is finite.

    Args:
        value: The loss of one optimiser step (or of a validation pass).
        epoch: 1-based epoch, for the message.
        step: 1-based step within the epoch; ``None`` for the validation loss.
        learning_rate: The configured step size, for the suggestion.
    """
    if math.isfinite(value):
        return
    where = f"epoch {epoch}, step {step}" if step is not None else f"validation of epoch {epoch}"
    raise TrainingDivergedError(
        f"training diverged: the loss became {value} at {where}; lower learning_rate "
        f"(now {learning_rate:g}, try {learning_rate / 10:g})"
    )


def nonfinite_weights(model: torch.nn.Module) -> list[str]:
    """Names of the floating-point parameters and buffers of ``model`` with NaN or Inf."""
    return [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


_MODELS = ("auxvae", "betavae", "hvae", "ssvae")
_KL_SCHEDULES = ("geometric", "linear")


@dataclass(frozen=True)
class VAETrainConfig:
    r"""Settings of :func:`invprior.priors.train.train_vae`.

    The per-sample objective is

    .. math::

        \lVert \hat x - x \rVert^2 + \beta_t\, \mathrm{KL}(q(z \mid x) \,\|\, p(z \mid u))
        + \lambda_{intra} (L_{exp} + L_{intra}) + \lambda_{inter} L_{inter}
        + \lambda_{cons} L_{cons},

    with the squared error summed over the grid in standardised field units and the
    correlation penalties of :mod:`invprior.priors.losses` taken over each batch, and the
    Aux-VAE's decoder consistency :math:`L_{cons}` of
    :func:`~invprior.priors.train.named_consistency` (off at the default
    ``lambda_consistency = 0``). Its weight is 0 for the first
    ``consistency_start_epochs`` epochs and then grows linearly to
    ``lambda_consistency`` over ``consistency_warmup_epochs``: the term asks the decoder
    to agree with the encoder's read-out of the named features, which means nothing
    while the encoder is still untrained. The KL
    weight :math:`\beta_t` is 0 for the first ``recon_epochs`` epochs (reconstruction
    only), then warms up to ``beta`` over ``kl_warmup_epochs`` epochs: geometrically from
    ``beta * kl_warmup_start`` (``kl_schedule="geometric"``) or linearly from 0
    (``"linear"``), so the decoder learns to reconstruct before the prior pulls the
    posterior in (a strong KL from the start leads to over-regularised minima with
    collapsed latents). The hierarchical-prior study (see
    :class:`~invprior.priors.HierarchicalVAE`) uses ``recon_epochs > 0``,
    ``kl_schedule="linear"`` and ``beta=1``.

    The other models change the terms: ``hvae`` (:class:`~invprior.priors.HierarchicalVAE`)
    replaces the KL by its bound against the learned hierarchical prior and has no
    penalties; ``ssvae`` (:class:`~invprior.priors.SemiSupervisedVAE`) uses the KL against
    :math:`N(0, I)`, no correlation penalties, and adds ``gamma`` times the label term's
    mean over a seeded ``labelled_fraction`` of the training samples, estimated on the
    labelled samples at every step.

    Attributes:
        model: ``"auxvae"``, ``"betavae"``, ``"hvae"`` or ``"ssvae"``.
        rec_dim: Residual latent size (for ``betavae`` and ``hvae`` the whole latent).
        channels: Encoder channels, one stride-2 convolution each.
        hidden: Width of the fully connected layers.
        tau: Standard deviation of :math:`z_{aux} \mid u` (Aux-VAE and ``ssvae``).
        hyper_dim: Size of the hyper-latent :math:`\xi` (``hvae`` only).
        hyper_hidden: Width of the hyper-latent networks (conditional prior network and
            auxiliary posterior; ``hvae`` only).
        gamma: Weight of the mean label term against the mean ELBO (``ssvae`` only).
        labelled_fraction: Fraction of the training samples whose named factors are used
            (``ssvae`` only), chosen by :func:`~invprior.priors.semisupervised.labelled_subset`
            with ``seed``.
        positive: Non-negative decoder output (for source fields).
        rec_shift: After training, fit the Aux-VAE's residual shift (see
            :func:`invprior.priors.train.fit_rec_shift`).
        beta: Final KL weight.
        lambda_intra: Weight of the explicitness and intra-independence penalties.
        lambda_inter: Weight of the inter-independence penalty.
        degree: Largest power :math:`K` in the correlation penalties.
        lambda_consistency: Weight of the decoder consistency term (``auxvae`` only; 0
            leaves it out, and training draws no random numbers for it).
        consistency_batch_size: Rows of each batch that the consistency term decodes
            and reads back (the first ones of the shuffled batch; ``None`` for all). The
            term is a batch mean, so fewer rows estimate the same quantity with more
            noise at a smaller cost per step.
        consistency_start_epochs: Epochs without the consistency term at the start.
        consistency_warmup_epochs: Epochs over which its weight then grows linearly from
            0 to ``lambda_consistency`` (0: at once).
        epochs: Maximum number of epochs.
        batch_size: Samples per optimiser step (at least 8: the penalties are batch
            correlations).
        learning_rate: Adam step size (cosine-decayed to 5% over ``epochs``).
        kl_warmup_epochs: Epochs of KL warm-up (0 for none).
        kl_warmup_start: Initial fraction of ``beta`` of the geometric warm-up, in ``(0, 1]``.
        kl_schedule: ``"geometric"`` or ``"linear"`` warm-up.
        recon_epochs: Reconstruction-only epochs (KL weight 0) before the warm-up.
        val_fraction: Fraction of the data held out for the validation loss.
        patience: Epochs without validation improvement (after the warm-ups of the KL
            and the consistency weights) before stopping.
        seed: Seed of initialisation, split, shuffling and reparametrisation noise.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        InputError: A setting of the wrong type (a string for a bool, ``8.5`` for an
            int, NaN or Inf) or out of its range; the message names the setting.
    """

    model: str = "auxvae"
    rec_dim: int = 8
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden: int = 256
    tau: float = 0.1
    hyper_dim: int = 2
    hyper_hidden: int = 32
    gamma: float = 1.0
    labelled_fraction: float = 0.01
    positive: bool = False
    rec_shift: bool = True
    beta: float = 0.05
    lambda_intra: float = 20.0
    lambda_inter: float = 20.0
    degree: int = 3
    lambda_consistency: float = 0.0
    consistency_batch_size: int | None = None
    consistency_start_epochs: float = 0.0
    consistency_warmup_epochs: float = 0.0
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    kl_warmup_epochs: float = 4.0
    kl_warmup_start: float = 1e-3
    kl_schedule: str = "geometric"
    recon_epochs: float = 0.0
    val_fraction: float = 0.1
    patience: int = 5
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.model not in _MODELS:
            raise InputError(f"model must be one of {_MODELS}, got {self.model!r}")
        positive = {
            "hidden": self.hidden,
            "tau": self.tau,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "degree": self.degree,
            "patience": self.patience,
            "hyper_dim": self.hyper_dim,
            "hyper_hidden": self.hyper_hidden,
        }
        bad = {k: v for k, v in positive.items() if not v > 0}
        if bad or not self.channels or min(self.channels) < 1:
            raise InputError(
                f"these settings must be positive: {bad or {'channels': self.channels}}"
            )
        nonneg = {
            "rec_dim": self.rec_dim,
            "beta": self.beta,
            "lambda_intra": self.lambda_intra,
            "lambda_inter": self.lambda_inter,
            "lambda_consistency": self.lambda_consistency,
            "consistency_start_epochs": self.consistency_start_epochs,
            "consistency_warmup_epochs": self.consistency_warmup_epochs,
            "kl_warmup_epochs": self.kl_warmup_epochs,
            "recon_epochs": self.recon_epochs,
            "gamma": self.gamma,
            "seed": self.seed,
        }
        bad = {k: v for k, v in nonneg.items() if v < 0}
        if bad:
            raise InputError(f"these settings must be non-negative: {bad}")
        if self.lambda_consistency > 0 and self.model != "auxvae":
            raise InputError(
                f"lambda_consistency applies to an auxvae only (its named block); got "
                f"{self.lambda_consistency} for a {self.model}"
            )
        if self.consistency_batch_size is not None and not (
            1 <= self.consistency_batch_size <= self.batch_size
        ):
            raise InputError(
                f"consistency_batch_size must be between 1 and batch_size "
                f"({self.batch_size}), got {self.consistency_batch_size}"
            )
        ramp = self.consistency_start_epochs + self.consistency_warmup_epochs
        if self.lambda_consistency > 0 and ramp >= self.epochs:
            raise InputError(
                f"the consistency term would never reach its weight: "
                f"consistency_start_epochs + consistency_warmup_epochs = {ramp:g} must be "
                f"below epochs ({self.epochs})"
            )
        if self.model in ("betavae", "hvae") and self.rec_dim < 1:
            raise InputError(f"a {self.model} needs rec_dim >= 1 (its whole latent)")
        if self.kl_schedule not in _KL_SCHEDULES:
            raise InputError(
                f"kl_schedule must be one of {_KL_SCHEDULES}, got {self.kl_schedule!r}"
            )
        if not 0 <= self.labelled_fraction <= 1:
            raise InputError(f"labelled_fraction must be in [0, 1], got {self.labelled_fraction}")
        if self.batch_size < 8:
            raise InputError(
                f"batch_size must be at least 8 (batch correlations), got {self.batch_size}"
            )
        if not 0 < self.kl_warmup_start <= 1:
            raise InputError(f"kl_warmup_start must be in (0, 1], got {self.kl_warmup_start}")
        if not 0 < self.val_fraction < 1:
            raise InputError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise InputError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )

    def to_dict(self) -> dict:
        """JSON-ready dict of the settings."""
        out = asdict(self)
        out["channels"] = list(self.channels)
        return out
