# SPDX-License-Identifier: MIT
"""``invprior train auxvae|betavae|hvae|ssvae|dlcfm --data DATA.npz --out PATH``: train, save."""

from __future__ import annotations

import argparse
import json
import logging

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
        description="Train on DATA.npz (from `invprior simulate`), score the model on a "
        "fresh held-out sample from the same simulator (seed + 1000003), and write "
        "PATH.safetensors with its PATH.json sidecar. `dlcfm` trains the residual flow of "
        "a DL-CFM generator over the Aux-VAE given by --base.",
    )
    p.add_argument("model", choices=("auxvae", "betavae", "hvae", "ssvae", "dlcfm"))
    p.add_argument("--data", required=True, help="training data (.npz)")
    p.add_argument("--out", required=True, help="checkpoint path (without suffix)")
    p.add_argument("--base", help="dlcfm: the Aux-VAE (shipped name or checkpoint path)")
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
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--eval-n",
        type=int,
        default=20000,
        help="held-out samples for metrics (0 skips the evaluation)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate on held-out data, save; prints one JSON line with the metrics."""
    import torch

    from invprior.priors.checkpoint import load, save
    from invprior.priors.simulate import FieldDataset, simulate
    from invprior.priors.train import DLCFMTrainConfig, VAETrainConfig, train_dlcfm, train_vae
    from invprior.priors.train.evaluate import HELDOUT_SEED_OFFSET, evaluate_dlcfm, evaluate_vae

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    flow = args.model == "dlcfm"
    known, other = (_FLOW_OPTIONS, _OPTIONS) if flow else (_OPTIONS, _FLOW_OPTIONS)
    if flow and args.base is None:
        raise SystemExit("invprior train dlcfm: --base (the Aux-VAE to build on) is required")
    stray = [k for k in other if k not in known and getattr(args, k) is not None]
    stray += ["base"] if not flow and args.base is not None else []
    if stray:
        options = ", ".join(f"--{k.replace('_', '-')}" for k in stray)
        raise SystemExit(f"invprior train {args.model}: {options} do not apply to this model")
    overrides = {k: getattr(args, k) for k in known if getattr(args, k) is not None}
    data = FieldDataset.load(args.data)
    progress = False if args.no_progress else None
    if flow:
        config = DLCFMTrainConfig(**overrides)
        base = load(args.base)
        model, history = train_dlcfm(config, data, base, progress, args.threads)
    else:
        overrides["positive"] = args.positive
        overrides["rec_shift"] = not args.no_rec_shift
        config = VAETrainConfig(model=args.model, **overrides)
        model, history = train_vae(config, data, progress=progress, num_threads=args.threads)
    metrics: dict = {}
    recipe = data.recipe
    if args.eval_n > 0 and recipe.get("simulator"):
        seed = int(recipe["seed"]) + HELDOUT_SEED_OFFSET
        held = simulate(recipe["simulator"], args.eval_n, seed, data.grid)
        metrics = (evaluate_dlcfm if flow else evaluate_vae)(model.cpu(), held)
        metrics["heldout"] = {"simulator": recipe["simulator"], "n": args.eval_n, "seed": seed}
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
        training["best_epoch"] = history.get("best_epoch")
        training["stopped_early"] = history["stopped_early"]
    metadata = {"data": recipe, "training": training, "metrics": metrics}
    save(model.cpu(), args.out, metadata)
    print(json.dumps({"out": args.out, "metrics": metrics, "training": training}))
    return 0
