# SPDX-License-Identifier: MIT
"""Write ``data.csv`` for ``study.toml``: noisy readings of a simulated release.

Stands in for measurements: the study's own physics and prior grid with a held-out
``[truth]`` of the source simulator at 16 sensors, noise std 0.002. Run from anywhere:
``python examples/own_problem/make_data.py``.
"""

import csv
import tomllib
from pathlib import Path

from mpi4py import MPI

from invprior.study import StudyConfig, build_study

HERE = Path(__file__).parent

tables = tomllib.loads((HERE / "study.toml").read_text())
for table in ("data", "noise"):
    del tables[table]
tables |= {"truth": {"seed": 777}, "sensors": {"per_side": 4}, "noise": {"std": 0.002}}
setup = build_study(StudyConfig.from_dict(tables, base=HERE), MPI.COMM_SELF)
with open(HERE / "data.csv", "w", newline="") as f:
    f.write("# SPDX-License-Identifier: MIT\n")  # lines starting with # are skipped
    writer = csv.writer(f)
    writer.writerow(["x", "y", "value"])
    for (x, y), value in zip(setup.model.sensors.points[:, :2], setup.data.numpy(), strict=True):
        writer.writerow([f"{x:.6g}", f"{y:.6g}", f"{value:.6g}"])
