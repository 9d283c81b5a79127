# SPDX-License-Identifier: MIT
"""``invprior evaluate-prior``: disentanglement and reconstruction metrics on fresh data.

Loads a generator, simulates a held-out sample with the simulator its training data came
from (a seed other than the training seed), prints a metrics table and, as the last line,
one JSON object; with ``--out FOLDER`` it also writes that object as ``metrics.json`` and
the figures as PNG into ``FOLDER``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from invprior.validation import InputError

from ..fileio import check_writable, json_text, save_figure, write_json

if TYPE_CHECKING:
    from invprior.priors import Generator
    from invprior.priors.simulate import FieldDataset

__all__ = ["add_parser"]

_SIMULATORS = ("source", "conductivity")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate-prior`` to the ``invprior`` parser."""
    p = subparsers.add_parser(
        "evaluate-prior",
        help="held-out disentanglement metrics of a pretrained generator",
        description=(
            "Simulate a fresh held-out sample, encode it with the generator and report LDS, "
            "SAP, MIG, DCI, reconstruction SSIM, explicitness, the perturbation test and the "
            "relative error of the least-squares projection of the first 50 fields onto the "
            "generator's range. "
            "The last line printed is one JSON object."
        ),
    )
    p.add_argument("prior", metavar="NAME_OR_PATH", help="shipped prior name or checkpoint path")
    p.add_argument(
        "--n",
        type=int,
        default=20000,
        help="held-out fields (default 20000, the size of the shipped sidecars' scores: with "
        "a few thousand, LDS is biased low, as the ceiling printed beside it shows)",
    )
    p.add_argument("--seed", type=int, default=1234, help="held-out data seed (default 1234)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="output folder: metrics.json and the figures traversals.png, "
        "latent_factor_grid.png and reconstructions.png (default: print only)",
    )
    p.add_argument(
        "--simulator",
        default=None,
        metavar="NAME|FILE.py:NAME",
        help="simulator of the held-out data: source, conductivity or your simulator "
        "function in FILE.py, as `invprior simulate --simulator` takes it (default: the "
        "one in the checkpoint's recipe)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate ``args.prior``; returns 0.

    Raises:
        InputError: Bad ``--n``, ``--seed`` or ``--out`` (checked first), a prior that
            cannot be loaded, has no encoder (a Gaussian field prior) or whose recipe
            names no simulator, or a held-out seed equal to the training seed.
    """
    if args.n < 1:
        raise InputError(f"--n must be a positive integer (held-out fields), got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.out is not None:
        check_writable(args.out, "--out", folder=True)
    from invprior import priors  # after the checks: it takes seconds
    from invprior.priors.simulate import simulate
    from invprior.training_data import run_simulator

    try:
        generator = priors.load(args.prior)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot load prior {args.prior!r}: {err}") from err
    recipe = generator.training_data
    simulator = args.simulator or recipe.get("simulator") or recipe.get("plugin")
    plugin = simulator is not None and ":" in simulator
    if not plugin and simulator not in _SIMULATORS:
        raise InputError(
            f"--simulator must be one of {list(_SIMULATORS)} or FILE.py:NAME, got {simulator!r}"
            if args.simulator
            else f"the checkpoint records no known simulator (recipe: {recipe}); pass --simulator."
        )
    if recipe.get("seed") == args.seed:
        raise InputError(
            f"--seed {args.seed} is the training data seed, so the sample would not be held "
            "out; pass another --seed."
        )
    if plugin:  # the plugin's own grid; a mismatch with the generator's is named below
        data = run_simulator(simulator, args.n, args.seed)
        if data.grid.shape != generator.grid.shape:
            raise InputError(
                f"--simulator {simulator} draws fields of shape {data.grid.shape} but the "
                f"prior's grid is {generator.grid.shape}"
            )
    try:
        if not plugin:
            data = simulate(simulator, args.n, args.seed, generator.grid)
        metrics = priors.evaluate_generator(
            generator, data.fields, data.aux, data.aux_names, seed=args.seed
        )
    except (TypeError, ValueError) as err:
        raise InputError(f"cannot evaluate prior {args.prior!r}: {err}") from err
    print(_table(f"{args.prior} ({type(generator).__name__})", simulator, args.seed, metrics))
    summary = {"prior": str(args.prior), "simulator": simulator, "seed": args.seed, **metrics}
    if args.out is not None:
        summary["figures"] = [str(p) for p in _write_figures(generator, data, args.out)]
        write_json(args.out / "metrics.json", summary)
    print(json_text(summary))
    return 0


def _table(title: str, simulator: str, seed: int, m: dict) -> str:
    """The metrics as an aligned two-column text table."""
    rows = [
        ("LDS (eq. 10, " + m["scored_latents"] + " latents)", m["lds"]),
        ("  ceiling of a perfect code at this n", m["lds_ceiling"]),
        ("  the named factors as their own code", m["lds_of_factors"]),
        ("LDS (all latents)", m["lds_all"]),
        ("  ceiling of a perfect code at this n", m["lds_all_ceiling"]),
        ("SAP", m["sap"]),
        ("MIG", m["mig"]),
        ("DCI disentanglement", m["dci_disentanglement"]),
        ("DCI completeness", m["dci_completeness"]),
        ("DCI informativeness (R^2)", m["dci_informativeness"]),
        ("SSIM median", m["ssim_median"]),
        ("SSIM mean", m["ssim_mean"]),
        (f"projection error, median of {m['n_projection']}", m["projection_error_median"]),
    ]
    rows += [(f"explicitness {k}", v) for k, v in m.get("explicitness", {}).items()]
    rows += [(f"SSIM drop, perturbed z_{k}", v) for k, v in m["perturbation_ssim_drop"].items()]
    for k, v in m.get("residual_readback_sd", {}).items():
        rows.append((f"{k} read back under fresh z_rec, sd", v))
        rows.append(("  the link's own sd, tau s", m["link_sd"][k]))
    width = max(len(label) for label, _ in rows)
    head = f"{title}; held-out {simulator} data, n={m['n']}, seed={seed}"
    return "\n".join([head, *(f"  {label:<{width}}  {value:8.4f}" for label, value in rows)])


def _write_figures(generator: Generator, data: FieldDataset, out: Path) -> list[Path]:
    """Traversals, latent-factor grid and reconstructions as PNG files in ``out``."""
    import numpy as np

    from invprior.priors.batched import decode_latents, encode_means
    from invprior.priors.plots import (
        latent_labels,
        plot_latent_factor_grid,
        plot_reconstructions,
        plot_traversals,
    )

    out.mkdir(parents=True, exist_ok=True)
    fields = data.fields[:1000]
    mu = encode_means(generator, fields)
    figures = {
        "traversals.png": plot_traversals(generator, np.zeros(mu.shape[1])),
        "latent_factor_grid.png": plot_latent_factor_grid(
            data.aux[:1000], mu, data.aux_names, latent_labels(generator)
        ),
        "reconstructions.png": plot_reconstructions(fields[:6], decode_latents(generator, mu[:6])),
    }
    return [save_figure(fig, out / name) for name, fig in figures.items()]
