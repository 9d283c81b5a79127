# SPDX-License-Identifier: MIT
"""``invprior train auxvae|betavae|hvae|ssvae|dlcfm --data DATA.npz|DATA.nc --out CHECKPOINT``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from invprior.fileio import check_writable
from invprior.validation import InputError

from . import add_threads_option, check_threads

__all__ = ["add_parser"]

# Options shared by VAETrainConfig and DLCFMTrainConfig.
_SHARED = {"epochs": int, "seed": int, "batch_size": int, "learning_rate": float, "device": str}

# Options that map one-to-one onto VAETrainConfig fields.
_OPTIONS = {
    **_SHARED,
    "rec_dim": int,
    "beta": float,
    "tau": float,
    "lambda_intra": float,
    "lambda_inter": float,
    "lambda_consistency": float,
    "consistency_batch_size": int,
    "consistency_start_epochs": float,
    "consistency_warmup_epochs": float,
    "kl_warmup_epochs": float,
    "kl_schedule": str,
    "recon_epochs": float,
    "hyper_dim": int,
    "gamma": float,
    "labelled_fraction": float,
    "patience": int,
}

# Options that map one-to-one onto DLCFMTrainConfig fields.
_FLOW_OPTIONS = {
    **_SHARED,
    "channels": int,
    "steps": int,
    "method": str,
    "ema_decay": float,
    "max_minutes": float,
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="train a prior (Aux-VAE, beta-VAE, hierarchical-prior or semi-supervised "
        "VAE, or the DL-CFM flow over a trained Aux-VAE) on simulated fields",
        description="Train on DATA.npz or DATA.nc (from `invprior simulate`, or your own "
        "fields in the NetCDF layout of invprior.training_data), score the model on a "
        "fresh held-out sample from the same simulator (seed + 1000003; a data file "
        "without a simulator recipe is not scored), and write "
        "CHECKPOINT.safetensors with its CHECKPOINT.json sidecar. `dlcfm` trains the "
        "residual flow of a DL-CFM generator over the Aux-VAE given by --base.",
    )
    p.add_argument("model", choices=("auxvae", "betavae", "hvae", "ssvae", "dlcfm"))
    p.add_argument(
        "--data",
        required=True,
        metavar="DATA.npz|DATA.nc",
        help="training data (`invprior simulate`, or the NetCDF layout)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="CHECKPOINT",
        help="the checkpoint to write: CHECKPOINT.safetensors and CHECKPOINT.json (the "
        "path without suffix, as --base, evaluate-prior and [prior] name take it)",
    )
    p.add_argument(
        "--base",
        metavar="NAME_OR_PATH",
        help="dlcfm: the Aux-VAE (shipped name or checkpoint path)",
    )
    p.add_argument(
        "--init",
        metavar="NAME_OR_PATH",
        help="auxvae, betavae, hvae, ssvae: start from this trained generator (shipped "
        "name or checkpoint path) instead of fresh weights, to train it longer or on your "
        "own fields; it keeps its normalisation, and the architecture settings must match",
    )
    for name, kind in (_OPTIONS | _FLOW_OPTIONS).items():
        owners = [c for c, o in (("VAE", _OPTIONS), ("DLCFM", _FLOW_OPTIONS)) if name in o]
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            dest=name,
            help=" and ".join(f"{c}TrainConfig.{name}" for c in owners),
        )
    p.add_argument("--positive", action="store_true", help="non-negative fields (sources)")
    p.add_argument("--no-rec-shift", action="store_true", help="skip the residual shift fit")
    add_threads_option(p, default=None)
    p.add_argument(
        "--eval-n",
        type=int,
        default=20000,
        help="held-out samples for metrics (0 skips the evaluation)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> dict:
    """The config overrides of ``args``, after checking every option that is not a setting."""
    flow = args.model == "dlcfm"
    known, other = (_FLOW_OPTIONS, _OPTIONS) if flow else (_OPTIONS, _FLOW_OPTIONS)
    if flow and args.base is None:
        raise InputError(
            "--base (the Aux-VAE to build on: a shipped name or a checkpoint path) is "
            "required for dlcfm"
        )
    stray = [k for k in other if k not in known and getattr(args, k) is not None]
    stray += ["base"] if not flow and args.base is not None else []
    stray += ["init"] if flow and args.init is not None else []
    stray += ["positive"] if flow and args.positive else []
    stray += ["no_rec_shift"] if flow and args.no_rec_shift else []
    if stray:
        options = ", ".join(f"--{k.replace('_', '-')}" for k in stray)
        raise InputError(f"{options} do not apply to {args.model}; leave them out")
    check_threads(args.threads)
    if args.eval_n < 0:
        raise InputError(f"--eval-n must be >= 0 (0 skips the evaluation), got {args.eval_n}")
    return {k: getattr(args, k) for k in known if getattr(args, k) is not None}


def _check_recipe(recipe: dict, eval_n: int, simulators: tuple[str, ...]) -> None:
    """The held-out evaluation can run on data made by ``recipe`` (when it is asked for).

    A recipe names a built-in ``simulator`` or a simulator ``plugin`` (``FILE.py:NAME``,
    whose file must still be where the data were simulated from), and a seed.
    """
    made_by = recipe.get("simulator") or recipe.get("plugin")
    if eval_n == 0 or not made_by:
        return
    seed = recipe.get("seed")
    plugin = recipe.get("plugin")
    known = Path(str(plugin).rpartition(":")[0]).is_file() if plugin else made_by in simulators
    if not known or not isinstance(seed, int) or seed < 0:
        raise InputError(
            f"the data's recipe names simulator {made_by!r} and seed {seed!r}; "
            f"the held-out evaluation needs one of {list(simulators)} or a simulator file, "
            "and a seed >= 0: simulate the data with `invprior simulate`, or pass --eval-n 0"
        )


def _heldout(recipe: dict, eval_n: int, grid: object) -> object:
    """The held-out sample of the simulator of ``recipe`` (:func:`heldout_data`)."""
    from invprior.priors.train.evaluate import heldout_data

    try:
        return heldout_data(recipe, eval_n, grid)
    except InputError as err:  # only a simulator plugin raises it
        raise InputError(
            f"the held-out evaluation runs the data's simulator again: {err}; run from "
            "the folder the data were simulated in, or pass --eval-n 0"
        ) from err


def run(args: argparse.Namespace) -> int:
    """Train, evaluate on held-out data, save; prints one JSON line with the metrics.

    Every option, the output folder, the data and (for dlcfm) the base are checked before
    training starts; bad input raises :class:`~invprior.validation.InputError`, and so
    does a training run that diverges (the message suggests a smaller learning rate). No
    checkpoint is written unless training and evaluation succeed with finite weights.
    """
    overrides = _check_options(args)  # before the imports below, which take seconds
    import torch

    from invprior.priors.checkpoint import load, save
    from invprior.priors.train import (
        DLCFMTrainConfig,
        TrainingDivergedError,
        VAETrainConfig,
        nonfinite_weights,
        starting_model,
        train_dlcfm,
        train_vae,
    )
    from invprior.priors.train.evaluate import evaluate_dlcfm, evaluate_vae
    from invprior.priors.vae import AuxVAE
    from invprior.training_data import read_fields

    flow = args.model == "dlcfm"
    try:
        if flow:
            config = DLCFMTrainConfig(**overrides)
        else:
            overrides["positive"] = args.positive
            overrides["rec_shift"] = not args.no_rec_shift
            config = VAETrainConfig(model=args.model, **overrides)
    except InputError as err:
        raise InputError(f"bad option value: {err}") from err
    check_writable(args.out, "--out")
    data = read_fields(args.data)
    recipe = data.recipe
    _check_recipe(recipe, args.eval_n, ("source", "conductivity"))
    if flow:
        try:
            base = load(args.base)
        except (OSError, ValueError) as err:
            raise InputError(f"--base {args.base}: cannot load the Aux-VAE: {err}") from err
        if not isinstance(base, AuxVAE):
            raise InputError(
                f"--base {args.base} is a {type(base).__name__}; dlcfm builds on an AuxVAE"
            )
    init = None
    if args.init is not None:
        try:
            init = load(args.init)
        except (OSError, ValueError) as err:
            raise InputError(f"--init {args.init}: cannot load the generator: {err}") from err
        try:
            starting_model(config, data, init)
        except InputError as err:
            raise InputError(f"--init {args.init}: {err}") from err
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    progress = False if args.no_progress else None
    try:
        if flow:
            model, history = train_dlcfm(config, data, base, progress, args.threads)
        else:
            model, history = train_vae(
                config, data, init=init, progress=progress, num_threads=args.threads
            )
    except TrainingDivergedError as err:
        raise InputError(f"{err}; nothing was written") from err
    if bad := nonfinite_weights(model):
        raise TrainingDivergedError(f"the trained model has non-finite weights in {bad[:5]}")
    metrics: dict = {}
    if args.eval_n > 0 and (recipe.get("simulator") or recipe.get("plugin")):
        held = _heldout(recipe, args.eval_n, data.grid)
        metrics = (evaluate_dlcfm if flow else evaluate_vae)(model.cpu(), held)
        made_by = recipe.get("simulator") or recipe["plugin"]
        metrics["heldout"] = {"simulator": made_by, "n": args.eval_n, "seed": held.recipe["seed"]}
    training = {
        "config": config.to_dict(),
        "options": overrides,
        "epochs_run": len(history["epoch"]),
        "wall_time_s": round(history["wall_time_s"], 1),
        "final_val_loss": history["val_loss"][-1],
        "torch": torch.__version__,
    }
    if flow:
        training["base"] = {"name": args.base, "sha256": base.metadata["sha256"]}
        training["stopped_on_time"] = history["stopped_on_time"]
    else:
        if init is not None:
            training["init"] = {"name": args.init, "sha256": init.metadata["sha256"]}
        training["best_epoch"] = history.get("best_epoch")
        training["stopped_early"] = history["stopped_early"]
    metadata = {"data": recipe, "training": training, "metrics": metrics}
    save(model.cpu(), args.out, metadata)
    print(json.dumps({"out": args.out, "metrics": metrics, "training": training}))
    return 0
