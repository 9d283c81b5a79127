# SPDX-License-Identifier: MIT
"""``invprior train auxvae|betavae|hvae|ssvae --data DATA.npz --out PATH``: train, save."""

from __future__ import annotations

import argparse
import json
import logging

__all__ = ["add_parser"]

# Command-line options that map one-to-one onto VAETrainConfig fields.
_OPTIONS = {
    "epochs": int,
    "seed": int,
    "rec_dim": int,
    "batch_size": int,
    "learning_rate": float,
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
    "device": str,
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="train a VAE prior (Aux-VAE, beta-VAE, hierarchical-prior or semi-supervised "
        "VAE) on simulated fields",
        description="Train on DATA.npz (from `invprior simulate`), score the model on a "
        "fresh held-out sample from the same simulator (seed + 1000003), and write "
        "PATH.safetensors with its PATH.json sidecar.",
    )
    p.add_argument("model", choices=("auxvae", "betavae", "hvae", "ssvae"))
    p.add_argument("--data", required=True, help="training data (.npz)")
    p.add_argument("--out", required=True, help="checkpoint path (without suffix)")
    for name, kind in _OPTIONS.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            dest=name,
            help=f"VAETrainConfig.{name}",
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

    from invprior.priors.checkpoint import save
    from invprior.priors.simulate import FieldDataset, simulate
    from invprior.priors.train import VAETrainConfig, evaluate_vae, train_vae
    from invprior.priors.train.evaluate import HELDOUT_SEED_OFFSET

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    overrides = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    overrides["positive"] = args.positive
    overrides["rec_shift"] = not args.no_rec_shift
    config = VAETrainConfig(model=args.model, **overrides)
    data = FieldDataset.load(args.data)
    model, history = train_vae(
        config, data, progress=False if args.no_progress else None, num_threads=args.threads
    )
    metrics: dict = {}
    recipe = data.recipe
    if args.eval_n > 0 and recipe.get("simulator"):
        seed = int(recipe["seed"]) + HELDOUT_SEED_OFFSET
        held = simulate(recipe["simulator"], args.eval_n, seed, data.grid)
        metrics = evaluate_vae(model.cpu(), held)
        metrics["heldout"] = {"simulator": recipe["simulator"], "n": args.eval_n, "seed": seed}
    metadata = {
        "data": recipe,
        "training": {
            "config": config.to_dict(),
            "options": overrides,
            "epochs_run": len(history["epoch"]),
            "best_epoch": history.get("best_epoch"),
            "stopped_early": history["stopped_early"],
            "wall_time_s": round(history["wall_time_s"], 1),
            "final_val_loss": history["val_loss"][-1],
            "torch": torch.__version__,
        },
        "metrics": metrics,
    }
    save(model.cpu(), args.out, metadata)
    print(json.dumps({"out": args.out, "metrics": metrics, "training": metadata["training"]}))
    return 0
