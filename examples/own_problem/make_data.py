# SPDX-License-Identifier: MIT
"""Write ``data.csv`` for ``study.toml``: noisy readings of one simulated release.

Stands in for measurements: a release drawn by ``simulator.py`` with a seed the training
data did not use, its concentration at 15 sensors computed on the study's own mesh and
physics, plus noise of std ``NOISE_STD`` (which the study does not know: it has
``[noise] prior``). Prints the release's factors. Needs the trained ``prior`` (the
study's grid and forward model are built from the TOML). Run from anywhere:
``python examples/own_problem/make_data.py``.

Unlike the other examples, :func:`run` has no ``out``: it writes the ``data.csv`` that
``study.toml`` names, twice (first the sensor positions, from which the study builds its
sensors, then the readings).
"""

import csv
import io
import json
from pathlib import Path

from mpi4py import MPI

import numpy as np
import torch

from invprior.fileio import write_text
from invprior.plugin import load_function
from invprior.study import StudyConfig, build_study

HERE = Path(__file__).parent
TRUTH_SEED = 777
NOISE_STD = 0.002
#: A 4 x 4 sensor grid downstream of the inflow, less the one inside the jetty.
SENSORS = [
    (x, y) for y in (0.2, 0.4, 0.6, 0.8) for x in (0.5, 0.9, 1.3, 1.7) if x < 1.5 or y > 0.375
]


def write(values):
    """Write the sensors and ``values`` to data.csv (atomically)."""
    text = io.StringIO(newline="")
    text.write("# SPDX-License-Identifier: MIT\n")  # lines starting with # are skipped
    writer = csv.writer(text)
    writer.writerow(["x", "y", "value"])
    for (x, y), value in zip(SENSORS, values, strict=True):
        writer.writerow([f"{x:g}", f"{y:g}", f"{value:.6g}"])
    write_text(HERE / "data.csv", text.getvalue())


def run():
    """Draw the release, write its noisy readings to data.csv; returns its factors."""
    simulate, _ = load_function(f"{HERE / 'simulator.py'}:simulate", "simulator.py")
    fields, factors = simulate(1, np.random.default_rng(TRUTH_SEED))
    write(np.zeros(len(SENSORS)))  # the positions, from which the study builds its sensors
    setup = build_study(StudyConfig.from_toml(HERE / "study.toml"), MPI.COMM_SELF)
    clean = setup.forward(torch.as_tensor(fields[0], dtype=torch.float64)).numpy()
    noise = np.random.default_rng(TRUTH_SEED + 1).standard_normal(clean.shape)
    write(clean + NOISE_STD * noise)
    return {k: round(float(v[0]), 4) for k, v in factors.items()}


def main():
    print(json.dumps(run()))


if __name__ == "__main__":
    main()
