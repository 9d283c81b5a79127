# SPDX-License-Identifier: MIT
r"""Training loop of the Aux-VAE, the beta-VAE, the hierarchical-prior and semi-supervised VAEs.

One call, :func:`train_vae`, takes a :class:`VAETrainConfig` and a
:class:`~invprior.priors.simulate.FieldDataset` and returns the trained, frozen generator
and the loss history. The objective is documented on :class:`VAETrainConfig`; its terms
come from :mod:`invprior.priors.losses`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ...validation import InputError
from ..base import resolve_device
from ..hierarchical import HierarchicalVAE
from ..losses import explicitness_penalty, gaussian_kl, inter_independence, intra_independence
from ..semisupervised import SemiSupervisedVAE, label_nll, labelled_subset
from ..simulate import FieldDataset
from ..vae import AuxVAE, BetaVAE
from .config import TrainingDivergedError, VAETrainConfig, check_loss, nonfinite_weights

__all__ = [
    "build_vae",
    "consistency_weight",
    "fit_rec_shift",
    "named_consistency",
    "starting_model",
    "train_vae",
    "vae_loss",
]

logger = logging.getLogger(__name__)


_VAE = AuxVAE | BetaVAE | HierarchicalVAE


def build_vae(config: VAETrainConfig, data: FieldDataset) -> _VAE:
    """An untrained generator whose normalisation comes from ``data``.

    Args:
        config: Architecture settings.
        data: Training data: the field offset/scale and :math:`a(u)` statistics.

    Raises:
        InputError: An Aux-VAE or semi-supervised VAE asked for on data without named
            factors.
    """
    net = {
        "grid": data.grid,
        "channels": config.channels,
        "hidden": config.hidden,
        "field_offset": float(data.fields.mean()),
        "field_scale": float(data.fields.std()),
        "positive": config.positive,
    }
    if config.model == "betavae":
        return BetaVAE(latent_dim=config.rec_dim, **net)
    if config.model == "hvae":
        hyper = {"hyper_dim": config.hyper_dim, "hyper_hidden": config.hyper_hidden}
        return HierarchicalVAE(latent_dim=config.rec_dim, **hyper, **net)
    if not data.aux_names:
        raise InputError(
            f"an {config.model} needs data with named factors (aux_names is empty); train a "
            "betavae or hvae on these data, or simulate data with named factors"
        )
    aux = data.aux.astype(np.float64)
    cls = SemiSupervisedVAE if config.model == "ssvae" else AuxVAE
    return cls(
        aux_names=data.aux_names,
        aux_units=[data.units[k] for k in data.aux_names],
        aux_ranges={k: data.ranges[k] for k in data.aux_names},
        aux_mean=aux.mean(0).tolist(),
        aux_std=aux.std(0).tolist(),
        rec_dim=config.rec_dim,
        tau=config.tau,
        **net,
    )


def named_consistency(model: AuxVAE, z_aux: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r"""How far the named latent read back from a field with a fresh residual block strays.

    The Aux-VAE's objective ties the *encoder*'s named latent to :math:`u`; nothing in it
    stops the decoder from letting the residual block move the named features as well
    (a source's position, say), so that along a posterior's ridge the named latent
    trades off against residual coordinates. This term asks the decoder to keep them
    apart: it decodes :math:`z_{aux}` with a residual block drawn anew from the prior,
    reads the named latent back with the encoder, and returns

    .. math::

        L_{cons} = \tfrac12 \big\lVert (\mu_{aux}(G(z_{aux}, z_{rec})) - z_{aux}) / \tau
            \big\rVert^2

    (batch mean), the link's own scale. The residual block is drawn where an inversion's
    prior puts it: :math:`z_{rec} = \epsilon + V^T \phi(z_{aux})`,
    :math:`\epsilon \sim N(0, I)`, with :math:`V` the residual shift that
    :func:`fit_rec_shift` would fit on ``means`` (the shift is zero while training and
    fitted afterwards, and the residual means of training fields sit far from the
    origin; drawn around the origin instead, the term would keep the named features
    apart in a region that the prior never visits). Only the decoder gets its gradient:
    the encoder's weights are held fixed in the read-back, so it stays the reader the
    training fields make it and the two cannot agree on a pattern that only they see.

    Args:
        model: The Aux-VAE being trained.
        z_aux: Named latents to decode, shape ``(n, aux_dim)`` (taken as constants).
        means: Encoder means of the batch, shape ``(k, aux_dim + rec_dim)`` with ``k``
            well above ``1 + 3 aux_dim`` (taken as constants).

    Returns:
        Scalar.
    """
    z_aux = z_aux.detach()
    shift = model.rec_features(z_aux) @ _rec_shift_update(model, means.detach()).to(z_aux)
    z_rec = torch.randn(len(z_aux), model.rec_dim, dtype=z_aux.dtype, device=z_aux.device)
    field = model.decode_latent(torch.cat([z_aux, z_rec + shift], dim=-1))
    fixed = {k: v.detach() for k, v in model.encoder.named_parameters()}
    out = torch.func.functional_call(model.encoder, fixed, (model.encoder_input(field),))
    return 0.5 * ((out[:, : model.aux_dim] - z_aux) / model.tau).pow(2).sum(-1).mean()


def _rec_shift_update(model: AuxVAE, means: torch.Tensor) -> torch.Tensor:
    r"""The least-squares :math:`V` of :math:`\mu_{rec} \approx \phi(\mu_{aux}) V`, float64.

    Args:
        model: An Aux-VAE.
        means: Its encoder means of some fields, shape ``(k, aux_dim + rec_dim)``.

    Returns:
        Shape ``(1 + 3 aux_dim, rec_dim)``.
    """
    d = model.aux_dim
    features = model.rec_features(means[:, :d]).double()
    return torch.linalg.lstsq(features, means[:, d:].double()).solution


def vae_loss(
    model: _VAE,
    x: torch.Tensor,
    u: torch.Tensor,
    beta: float,
    config: VAETrainConfig,
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
    consistency_weight: float | None = None,
) -> dict[str, torch.Tensor]:
    """The training objective on one batch and its terms.

    Args:
        model: The generator being trained.
        x: Fields, shape ``(n, ny, nx)``.
        u: Named variables in physical units, shape ``(n, aux_dim)``.
        beta: Current KL weight.
        config: Penalty weights and degree.
        labelled: Fields and named variables ``(x_l, u_l)`` of a mini-batch of labelled
            samples, for the label term of a :class:`~invprior.priors.SemiSupervisedVAE`;
            ``None`` for none. Ignored by the other models.
        consistency_weight: Current weight of the consistency term (during its warm-up,
            :func:`consistency_weight`); ``None`` for ``config.lambda_consistency``. At 0
            the term is neither computed nor returned.

    Returns:
        ``{"loss", "recon", "kl", "explicitness_penalty", "intra", "inter"}``, scalars
        (batch means), plus ``"consistency"`` (:func:`named_consistency`) for an Aux-VAE
        with a positive consistency weight, and ``"label"`` (the label term's mean
        over ``labelled``) for a semi-supervised VAE given ``labelled`` (validation passes
        none, so its loss is the plain ELBO); ``"kl"`` is the bound of
        :meth:`~invprior.priors.HierarchicalVAE.kl_bound` for that model.
    """
    mu, logvar = model.encode(x)
    u = u.to(mu)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    recon = (model.decode_latent(z) - x).div(model.field_scale).pow(2).sum((-2, -1)).mean()
    if isinstance(model, HierarchicalVAE):
        kl = model.kl_bound(mu, logvar, z).mean()
    else:
        prior_mean, prior_var = model.conditional_prior_moments(u, mu)
        kl = gaussian_kl(mu, logvar, prior_mean, prior_var).mean()
    d = model.aux_dim
    terms = {k: mu.new_zeros(()) for k in ("explicitness_penalty", "intra", "inter")}
    if isinstance(model, SemiSupervisedVAE):
        if labelled is not None:
            x_l, u_l = labelled
            mu_l, logvar_l = model.encode(x_l)
            target = model.to_latent(u_l.to(mu_l))
            terms["label"] = label_nll(mu_l[:, :d], logvar_l[:, :d], target).mean()
    elif d:
        terms = {
            "explicitness_penalty": explicitness_penalty(u, mu[:, :d]),
            "intra": intra_independence(u, mu[:, :d], config.degree),
            "inter": inter_independence(u, mu[:, d:], config.degree),
        }
        if consistency_weight is None:
            consistency_weight = config.lambda_consistency
        if consistency_weight > 0:
            rows = config.consistency_batch_size or len(z)
            terms["consistency"] = named_consistency(model, z[:rows, :d], mu)
    loss = (
        recon
        + beta * kl
        + config.lambda_intra * (terms["explicitness_penalty"] + terms["intra"])
        + config.lambda_inter * terms["inter"]
    )
    if "consistency" in terms:
        loss = loss + consistency_weight * terms["consistency"]
    if "label" in terms:
        loss = loss + config.gamma * terms["label"]
    return {"loss": loss, "recon": recon, "kl": kl, **terms}


@torch.no_grad()
def fit_rec_shift(model: AuxVAE, x: torch.Tensor, batch_size: int = 1024) -> None:
    r"""Fit the residual shift :math:`W` of an Aux-VAE by least squares, in place.

    With :math:`\phi(\mu_{aux}) = (1, \mu_{aux}, \mu_{aux}^2, \mu_{aux}^3)` and the current
    residual means :math:`\mu_{rec}` of the fields ``x``, solve
    :math:`\min_V \lVert \mu_{rec} - \phi(\mu_{aux}) V \rVert^2` and set
    :math:`W \leftarrow W + V`. Afterwards the residual means are uncorrelated with every
    power up to 3 of every auxiliary coordinate on ``x`` (the inter-independence of the
    Aux-VAE, without the sampling noise of batch correlations); reconstructions are
    unchanged because the decoder applies the inverse shift.

    Args:
        model: The trained Aux-VAE.
        x: Training fields, shape ``(n, ny, nx)`` with ``n`` well above ``1 + 3 aux_dim``.
        batch_size: Fields encoded at once.

    Raises:
        ValueError: ``x`` holds NaN or Inf.
        TrainingDivergedError: The encoder means or the fitted shift are not finite; the
            model is left unchanged.
    """
    if not bool(torch.isfinite(x).all()):
        raise ValueError("fit_rec_shift needs finite fields x; x holds NaN or Inf")
    mu = torch.cat([model.encode(x[i : i + batch_size])[0] for i in range(0, len(x), batch_size)])
    if not bool(torch.isfinite(mu).all()):
        raise TrainingDivergedError(
            "the encoder means of the training fields are not finite, so the residual shift "
            "cannot be fitted; lower learning_rate, or skip the fit (rec_shift=False)"
        )
    coef = _rec_shift_update(model, mu)
    if not bool(torch.isfinite(coef).all()):
        raise TrainingDivergedError(
            "the least-squares fit of the residual shift is not finite (the named latent "
            "means are degenerate); skip the fit (rec_shift=False) or train longer"
        )
    model.rec_shift += coef.to(model.rec_shift)


def _warmup_epochs(config: VAETrainConfig) -> float:
    """Epochs of warm-up (KL weight, consistency weight).

    Early stopping and the choice of the best epoch start after them, when the objective
    is the final one.
    """
    kl = config.recon_epochs + config.kl_warmup_epochs
    if config.lambda_consistency == 0:
        return kl
    return max(kl, config.consistency_start_epochs + config.consistency_warmup_epochs)


def consistency_weight(config: VAETrainConfig, epoch: float) -> float:
    """The consistency term's weight at ``epoch`` (fractional).

    0 for ``consistency_start_epochs``, then linear up to ``lambda_consistency`` over
    ``consistency_warmup_epochs``.
    """
    progress = epoch - config.consistency_start_epochs
    if progress < 0:
        return 0.0
    if progress >= config.consistency_warmup_epochs:
        return config.lambda_consistency
    return config.lambda_consistency * progress / config.consistency_warmup_epochs


def _kl_weight(config: VAETrainConfig, epoch: float) -> float:
    """0 for ``recon_epochs``, then a geometric or linear warm-up to ``beta``."""
    if epoch < config.recon_epochs:
        return 0.0
    progress = epoch - config.recon_epochs
    if progress >= config.kl_warmup_epochs:
        return config.beta
    if config.kl_schedule == "linear":
        return config.beta * progress / config.kl_warmup_epochs
    return config.beta * config.kl_warmup_start ** (1.0 - progress / config.kl_warmup_epochs)


@torch.no_grad()
def _validate(model: _VAE, x: torch.Tensor, u: torch.Tensor, config: VAETrainConfig) -> dict:
    """Mean loss terms over validation batches, at the final KL weight."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(config.seed + 1)
        for i in range(0, len(x) - config.batch_size + 1, config.batch_size):
            sl = slice(i, i + config.batch_size)
            terms = vae_loss(model, x[sl], u[sl], config.beta, config)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
    return {k: v / count for k, v in sums.items()}


def _labelled_batch(
    x: torch.Tensor, u: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The labelled samples of one step, None when there are none.

    All of them, or ``batch_size`` drawn without replacement when there are more.
    """
    if len(x) == 0:
        return None
    if len(x) <= batch_size:
        return x, u
    idx = torch.randperm(len(x), device=x.device)[:batch_size]
    return x[idx], u[idx]


def _check_weights(model: _VAE, stage: str, config: VAETrainConfig) -> None:
    """Raise :class:`TrainingDivergedError` if ``model`` has NaN or Inf weights."""
    if bad := nonfinite_weights(model):
        raise TrainingDivergedError(
            f"after {stage} the {config.model} has non-finite weights in {bad[:5]}; lower "
            f"learning_rate (now {config.learning_rate:g}, try {config.learning_rate / 10:g})"
        )


def _split(data: FieldDataset, config: VAETrainConfig) -> tuple[FieldDataset, FieldDataset]:
    n_val = max(config.batch_size, int(round(config.val_fraction * len(data))))
    if len(data) - n_val < config.batch_size:
        raise InputError(
            f"dataset of {len(data)} samples is too small for batch_size {config.batch_size} "
            f"and val_fraction {config.val_fraction}; simulate more samples"
        )
    perm = np.random.default_rng(config.seed).permutation(len(data))
    return data.subset(perm[n_val:]), data.subset(perm[:n_val])


def train_vae(
    config: VAETrainConfig,
    data: FieldDataset,
    *,
    init: _VAE | None = None,
    progress: bool | None = None,
    num_threads: int | None = None,
) -> tuple[_VAE, dict]:
    """Train a VAE prior (``config.model``) on simulated fields.

    A ``val_fraction`` of ``data`` is held out; its loss (at the final KL weight) is
    tracked every epoch, the best state after warm-up is kept, and training stops after
    ``patience`` epochs without improvement.

    Args:
        config: The settings.
        data: Fields and named factors.
        init: A trained generator to start from instead of fresh weights (continued
            training, or fine-tuning on other fields); it keeps its own normalisation and
            link :math:`a(u)`, and is left unchanged (training works on a copy). Its class
            and architecture must be the ones ``config`` and ``data`` build.
        progress: Show a progress bar; ``None`` shows it only when stderr is a terminal.
        num_threads: CPU threads for torch during training (``None`` leaves torch's
            setting alone); the previous setting is restored afterwards.

    Returns:
        ``(model, history)``: the frozen generator in eval mode on the training device,
        and a dict with per-epoch lists (``epoch``, ``beta``, ``train_loss``,
        ``val_loss`` and the validation terms) plus ``best_epoch``, ``stopped_early``
        and ``wall_time_s``.

    Raises:
        InputError: ``data`` hold NaN or Inf, are too small for the batch size and
            validation split, or lack the named factors the model needs; ``init`` is
            another model, grid, architecture or set of named variables (the message
            lists each difference); all checked before any training step.
        TrainingDivergedError: The loss became NaN or Inf (the message names the epoch
            and step), or the trained weights or the residual-shift fit are not finite.
    """
    if not isinstance(config, VAETrainConfig):
        raise TypeError(f"config must be a VAETrainConfig, got {type(config).__name__}")
    if not isinstance(data, FieldDataset):
        raise TypeError(f"data must be a FieldDataset, got {type(data).__name__}")
    data.check_finite()
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(config, data, init, device, progress)
    finally:
        torch.set_num_threads(previous_threads)


# Constructor arguments that build_vae takes from the data's statistics: a generator
# trained on other fields keeps its own, since its weights were trained against them.
_NORMALISATION = frozenset({"field_offset", "field_scale", "aux_mean", "aux_std"})

# Constructor arguments that continued training may change: the link's width tau sets
# the objective (z_aux | u ~ N(a(u), tau^2 I)), not the shape of any weight, so a
# generator trained with one tau can be fine-tuned to a narrower link.
_OBJECTIVE = frozenset({"tau"})


def starting_model(config: VAETrainConfig, data: FieldDataset, init: _VAE | None) -> _VAE:
    """The network training starts from: fresh weights, or a trainable copy of ``init``.

    An Aux-VAE's residual shift is zero in the copy, as in every training run (it is a
    reparametrisation fitted after training, :func:`fit_rec_shift`, which leaves
    reconstructions unchanged; training through it would feed the decoder the shift of
    the sampled, not the mean, auxiliary latent). The returned model therefore encodes
    ``init``'s residual coordinates before their shift.

    Args:
        config: Architecture settings.
        data: Training data (grid, named variables and their ranges).
        init: A trained generator, or ``None`` for a fresh one (:func:`build_vae`).

    Raises:
        InputError: ``init`` is another class of model than ``config.model``, or differs
            from what ``config`` and ``data`` build in anything but the normalisation and
            the link's width ``tau`` (which the copy takes from ``config``); the message
            lists every difference.
    """
    fresh = build_vae(config, data)
    if init is None:
        return fresh
    if type(init) is not type(fresh):
        raise InputError(
            f"the generator to start from is {type(init).__name__}; `{config.model}` "
            f"training starts from {type(fresh).__name__}"
        )
    ours, theirs = (json.loads(json.dumps(m.config())) for m in (fresh, init))
    differ = [
        f"{k}: {theirs.get(k)!r} in the generator, {v!r} here"
        for k, v in ours.items()
        if k not in _NORMALISATION | _OBJECTIVE and theirs.get(k) != v
    ]
    if differ:
        raise InputError(
            "the generator to start from does not fit these settings and data ("
            + "; ".join(differ)
            + "); pass the settings it was trained with, on fields of its grid and names"
        )
    model = copy.deepcopy(init).requires_grad_(True)
    if "tau" in ours:
        model.tau = float(config.tau)
    if isinstance(model, AuxVAE):  # back to the network training left: the shift is refitted
        model.rec_shift.zero_()
    return model


def _train(
    config: VAETrainConfig,
    data: FieldDataset,
    init: _VAE | None,
    device: torch.device,
    progress: bool | None,
) -> tuple[_VAE, dict]:
    """The loop of :func:`train_vae`."""
    torch.manual_seed(config.seed)
    train, val = _split(data, config)
    model = starting_model(config, train, init).to(device)
    x_tr = torch.as_tensor(train.fields, device=device)
    u_tr = torch.as_tensor(train.aux, dtype=x_tr.dtype, device=device)
    x_va = torch.as_tensor(val.fields, device=device)
    u_va = torch.as_tensor(val.aux, dtype=x_va.dtype, device=device)
    rows = torch.as_tensor(labelled_subset(len(train), config.labelled_fraction, config.seed))
    x_lab, u_lab = x_tr[rows.to(device)], u_tr[rows.to(device)]
    steps = len(x_tr) // config.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / (config.epochs * steps)))
    )
    history: dict = {"epoch": [], "beta": [], "train_loss": [], "val_loss": []}
    best, best_state, bad_epochs, stopped = math.inf, None, 0, False
    show = sys.stderr.isatty() if progress is None else progress
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"train {config.model}", disable=not show, unit="ep")
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(x_tr), device=device)
        total = 0.0
        for s in range(steps):
            idx = perm[s * config.batch_size : (s + 1) * config.batch_size]
            beta = _kl_weight(config, epoch + s / steps)
            weight = consistency_weight(config, epoch + s / steps)
            labelled = _labelled_batch(x_lab, u_lab, config.batch_size)
            terms = vae_loss(model, x_tr[idx], u_tr[idx], beta, config, labelled, weight)
            loss = float(terms["loss"].detach())
            check_loss(loss, epoch + 1, s + 1, config.learning_rate)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            sched.step()
            total += loss
        val_terms = _validate(model, x_va, u_va, config)
        check_loss(val_terms["loss"], epoch + 1, None, config.learning_rate)
        history["epoch"].append(epoch + 1)
        history["beta"].append(beta)
        history["train_loss"].append(total / steps)
        history["val_loss"].append(val_terms["loss"])
        for k, v in val_terms.items():
            if k != "loss":
                history.setdefault(f"val_{k}", []).append(v)
        bar.set_postfix(loss=f"{total / steps:.3g}", val=f"{val_terms['loss']:.3g}")
        logger.info("epoch %d: train %.4g, val %s", epoch + 1, total / steps, val_terms)
        if epoch + 1 < _warmup_epochs(config):
            continue
        if val_terms["loss"] < best:
            best, best_state, bad_epochs = val_terms["loss"], copy.deepcopy(model.state_dict()), 0
            history["best_epoch"] = epoch + 1
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                stopped = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    _check_weights(model, "training", config)
    if config.model == "auxvae" and config.rec_shift:
        fit_rec_shift(model, x_tr)
        _check_weights(model, "the residual-shift fit", config)
    history["stopped_early"] = stopped
    history["wall_time_s"] = time.perf_counter() - start
    return model.eval().requires_grad_(False), history
