# SPDX-License-Identifier: MIT
r"""Training of the DL-CFM residual flow on a frozen Aux-VAE.

:func:`train_dlcfm` computes, once, the encoder means :math:`\mu(x)`, decoder fields
:math:`D(\mu)` and standardised residuals :math:`r = (x - D(\mu)) / \sigma_r` of the
training fields (see :class:`~invprior.priors.DLCFMGenerator`), then minimises the
flow-matching loss (:func:`~invprior.priors.flow.flow_matching_loss`) of the velocity
U-Net on :math:`(r, \mu, D(\mu))` with Adam, a cosine-decayed step size and an exponential
moving average (EMA) of the weights, :math:`\bar\theta \leftarrow d_t \bar\theta +
(1 - d_t)\theta` with the warm-up :math:`d_t = \min(d, (1 + t) / (10 + t))` at step
:math:`t`, so that the first, untrained weights are forgotten; the EMA weights are the
ones kept, as is usual for flow and diffusion models (they give smoother maps than the
last iterate). A fixed
validation draw of :math:`(t, \varepsilon)` makes the validation loss comparable across
epochs.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ...validation import InputError, check_field_types
from ..base import resolve_device
from ..dlcfm import DLCFMGenerator
from ..flow import METHODS, flow_matching_loss
from ..simulate import FieldDataset
from ..vae import AuxVAE
from .config import TrainingDivergedError, check_loss, nonfinite_weights

__all__ = ["DLCFMTrainConfig", "train_dlcfm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DLCFMTrainConfig:
    """Settings of :func:`train_dlcfm`.

    Args:
        channels: U-Net channels at full resolution.
        embed: Width of the conditioning embedding.
        steps: Solver steps of the shipped generator's map.
        method: Solver of the shipped generator's map.
        epochs: Passes over the training fields.
        batch_size: Fields per optimiser step.
        learning_rate: Adam step size (cosine-decayed to 5% over the run).
        ema_decay: Decay of the exponential moving average of the weights.
        val_fraction: Fraction of the fields held out for the validation loss.
        max_minutes: Stop after the epoch that passes this wall time (0 for no limit).
        seed: Seed of initialisation, split, shuffling and the path's noise.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        InputError: A setting of the wrong type (a string for a number, ``8.5`` for an
            int, NaN or Inf) or out of its range; the message names the setting.
    """

    channels: int = 16
    embed: int = 64
    steps: int = 8
    method: str = "midpoint"
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 2e-3
    ema_decay: float = 0.999
    val_fraction: float = 0.05
    max_minutes: float = 0.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.method not in METHODS:
            raise InputError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        positive = {
            "channels": self.channels,
            "embed": self.embed,
            "steps": self.steps,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
        }
        if bad := {k: v for k, v in positive.items() if not v > 0}:
            raise InputError(f"these settings must be positive: {bad}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 < self.val_fraction < 1.0:
            raise InputError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.max_minutes < 0 or self.seed < 0:
            raise InputError(
                f"max_minutes and seed must be >= 0, got {self.max_minutes} and {self.seed}"
            )
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise InputError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict."""
        return asdict(self)


def _pairs(
    generator: DLCFMGenerator, x: torch.Tensor, batch_size: int = 512
) -> tuple[torch.Tensor, ...]:
    """:meth:`DLCFMGenerator.training_pairs` of ``x`` in batches."""
    parts = [generator.training_pairs(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def train_dlcfm(
    config: DLCFMTrainConfig,
    data: FieldDataset,
    base: AuxVAE,
    progress: bool | None = None,
    num_threads: int | None = None,
) -> tuple[DLCFMGenerator, dict]:
    """Train the residual flow of a DL-CFM generator on ``data`` over the Aux-VAE ``base``.

    Args:
        config: The settings.
        data: Training fields on ``base``'s grid.
        base: The pretrained Aux-VAE (kept frozen).
        progress: Show a progress bar; ``None`` shows it only when stderr is a terminal.
        num_threads: CPU threads for torch during training (``None`` leaves torch's
            setting alone); the previous setting is restored afterwards.

    Returns:
        ``(generator, history)``: the frozen generator with the EMA weights, in eval mode
        on the training device, and a dict with per-epoch ``epoch``, ``train_loss`` and
        ``val_loss`` (of the EMA weights) plus ``residual_scale``, ``steps_run``,
        ``stopped_on_time`` and ``wall_time_s``.

    Raises:
        InputError: ``data`` are on another grid than ``base``, hold NaN or Inf, or are
            too small to hold out a validation sample; ``base`` is not an Aux-VAE or has
            non-finite weights. Checked before any training step.
        TrainingDivergedError: The loss became NaN or Inf (the message names the epoch
            and step), or the trained weights are not finite.
    """
    _check_inputs(config, data, base)
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(config, data, base, resolve_device(config.device), progress)
    finally:
        torch.set_num_threads(previous_threads)


def _check_inputs(config: DLCFMTrainConfig, data: FieldDataset, base: AuxVAE) -> None:
    """The checks of :func:`train_dlcfm` that come before any work."""
    if not isinstance(config, DLCFMTrainConfig):
        raise TypeError(f"config must be a DLCFMTrainConfig, got {type(config).__name__}")
    if not isinstance(data, FieldDataset):
        raise TypeError(f"data must be a FieldDataset, got {type(data).__name__}")
    if not isinstance(base, AuxVAE):
        raise InputError(
            f"the base of a DL-CFM generator must be an AuxVAE, got a {type(base).__name__}"
        )
    if tuple(data.grid.shape) != tuple(base.grid.shape):
        raise InputError(
            f"data grid {tuple(data.grid.shape)} differs from the Aux-VAE's grid "
            f"{tuple(base.grid.shape)}; simulate the data on the base's grid"
        )
    data.check_finite()
    if bad := nonfinite_weights(base):
        raise InputError(f"the Aux-VAE base has non-finite weights in {bad[:5]}; retrain it")
    n_val = max(1, int(round(config.val_fraction * len(data))))
    if len(data) - n_val < 1:
        raise InputError(
            f"dataset of {len(data)} samples is too small: {n_val} are held out for "
            f"validation (val_fraction {config.val_fraction}); simulate more samples"
        )


def _train(
    config: DLCFMTrainConfig,
    data: FieldDataset,
    base: AuxVAE,
    device: torch.device,
    progress: bool | None,
) -> tuple[DLCFMGenerator, dict]:
    """The loop of :func:`train_dlcfm`."""
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    base = base.to(device=device, dtype=torch.float32)
    x = torch.as_tensor(np.asarray(data.fields), dtype=torch.float32, device=device)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))
    n_val = max(1, int(round(config.val_fraction * len(x))))
    generator = DLCFMGenerator(
        base, config.channels, config.embed, 1.0, config.steps, config.method
    ).to(device)
    r, mu, context = _pairs(generator, x[perm.to(device)])
    scale = float(r[n_val:].std())
    if not (math.isfinite(scale) and scale > 0):
        raise InputError(
            f"the residuals of the training fields under the Aux-VAE base have scale {scale}; "
            "the base must reconstruct these fields with finite, non-zero errors (use an "
            "Aux-VAE trained on data of this kind)"
        )
    generator.residual_scale.fill_(scale)
    r = r / scale
    va = slice(0, n_val)
    net = generator.velocity
    ema = copy.deepcopy(net).requires_grad_(False)
    steps = max(1, (len(x) - n_val) // config.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    total_steps = config.epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / total_steps))
    )
    history: dict = {"epoch": [], "train_loss": [], "val_loss": [], "residual_scale": scale}
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total_steps, desc="train dlcfm", disable=not show, unit="step")
    stopped = False
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(len(x) - n_val, device=device) + n_val
        total = 0.0
        for s in range(steps):
            idx = order[s * config.batch_size : (s + 1) * config.batch_size]
            ctx = context[idx]
            loss = flow_matching_loss(lambda t, rt, z, c=ctx: net(t, rt, z, c), r[idx], mu[idx])
            value = float(loss.detach())
            check_loss(value, epoch + 1, s + 1, config.learning_rate)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step = epoch * steps + s
            _ema_update(ema, net, min(config.ema_decay, (1 + step) / (10 + step)))
            total += value
            bar.update()
        val = _validate(ema, r[va], mu[va], context[va], config.seed)
        check_loss(val, epoch + 1, None, config.learning_rate)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(total / steps)
        history["val_loss"].append(val)
        bar.set_postfix(loss=f"{total / steps:.3g}", val=f"{val:.3g}")
        logger.info("epoch %d: train %.4g, val (EMA) %.4g", epoch + 1, total / steps, val)
        minutes = (time.perf_counter() - start) / 60
        if config.max_minutes and minutes > config.max_minutes and epoch + 1 < config.epochs:
            stopped = True
            break
    bar.close()
    net.load_state_dict(ema.state_dict())
    if bad := nonfinite_weights(generator):
        raise TrainingDivergedError(
            f"after training the DL-CFM generator has non-finite weights in {bad[:5]}; lower "
            f"learning_rate (now {config.learning_rate:g}, try {config.learning_rate / 10:g})"
        )
    history["steps_run"] = len(history["epoch"]) * steps
    history["stopped_on_time"] = stopped
    history["wall_time_s"] = time.perf_counter() - start
    return generator.eval().requires_grad_(False), history


def _ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * net``, parameter by parameter."""
    with torch.no_grad():
        for average, current in zip(ema.parameters(), net.parameters(), strict=True):
            average.lerp_(current, 1.0 - decay)


def _validate(
    net: torch.nn.Module, r: torch.Tensor, mu: torch.Tensor, context: torch.Tensor, seed: int
) -> float:
    """Flow-matching loss on the validation fields with a fixed draw of ``(t, eps)``."""
    net.eval()
    rng = torch.Generator(device=r.device).manual_seed(seed + 1)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(r), 256):
            sl = slice(i, i + 256)
            loss = flow_matching_loss(
                lambda t, rt, z, c=context[sl]: net(t, rt, z, c), r[sl], mu[sl], rng
            )
            total += float(loss) * len(r[sl])
    return total / len(r)
