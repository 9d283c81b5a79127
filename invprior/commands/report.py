# SPDX-License-Identifier: MIT
"""``invprior report RESULTS_DIR``: redraw the figures and summary of a finished study."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    """Redraw the report; returns 0, or 2 with a message on stderr if there is no study."""
    import xarray as xr

    from invprior.report import study_metrics, text_summary, write_report

    path = args.results / "posterior.nc"
    if not path.is_file():
        print(
            f"invprior report: error: {path} not found; run `invprior run` first", file=sys.stderr
        )
        return 2
    with xr.open_datatree(path) as tree:
        tree = tree.load()
    write_report(tree, args.results)
    print(text_summary(tree))
    print(json.dumps(study_metrics(tree)))
    return 0
