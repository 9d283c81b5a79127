# SPDX-License-Identifier: MIT
"""The distribution lists every package of the tree (the wheel itself: tools/check-wheel.sh)."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setuptools_table():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_folder_with_code_or_data_is_a_listed_package():
    table = _setuptools_table()
    found = set()
    for package, folder in table["package-dir"].items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() and "__pycache__" not in path.parts and any(path.iterdir()):
                relative = path.relative_to(ROOT / folder).parts
                found.add(".".join((package, *relative)))
        found.add(package)
    # a sub-folder of invprior/ mapped elsewhere is its own package, not invprior.<folder>
    mapped = {f"invprior.{folder}" for folder in table["package-dir"].values()} - {
        *table["package-dir"]
    }
    assert sorted(found - mapped) == sorted(table["packages"])


def test_shipped_weights_are_package_data():
    data = _setuptools_table()["package-data"]["invprior.priors.pretrained"]
    shipped = {p.suffix for p in (ROOT / "priors" / "pretrained").iterdir()}
    assert {f".{pattern.split('.')[-1]}" for pattern in data} >= shipped
