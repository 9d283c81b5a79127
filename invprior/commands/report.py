# SPDX-License-Identifier: MIT
"""``invprior report RESULTS_DIR``: redraw the figures and summary of a finished study."""

from __future__ import annotations

import argparse
from pathlib import Path

from invprior.fileio import json_text

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``invprior`` parser."""
    p = subparsers.add_parser(
        "report",
        help="redraw the report of a finished study",
        description=(
            "Read RESULTS_DIR/posterior.nc (written by `invprior run`), rewrite the figures, "
            "summary.txt and metrics.json there, print the summary and, as the last line, "
            "the metrics as one JSON object. fields.xdmf is left as `invprior run` wrote it "
            "(it needs the mesh)."
        ),
    )
    p.add_argument("results", type=Path, metavar="RESULTS_DIR", help="folder of a study")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Redraw the report; returns 0.

    Raises:
        InputError: ``RESULTS_DIR`` is not a folder, or holds no readable
            ``posterior.nc`` (``invprior`` prints the message and exits with status 2).
    """
    import xarray as xr

    from invprior.report import study_metrics, text_summary, write_report
    from invprior.validation import InputError

    if not args.results.is_dir():
        raise InputError(
            f"{args.results} is not a folder; give the output folder of `invprior run`"
        )
    path = args.results / "posterior.nc"
    if not path.is_file():
        raise InputError(
            f"{path} not found: {args.results} holds no finished study; run `invprior run` "
            "first, or give the folder it wrote"
        )
    try:
        with xr.open_datatree(path) as tree:
            tree = tree.load()
    except (OSError, ValueError) as err:
        raise InputError(
            f"{path} is not a readable study DataTree ({err}); run `invprior run` again"
        ) from err
    write_report(tree, args.results)
    print(text_summary(tree))
    print(json_text(study_metrics(tree)))
    return 0
