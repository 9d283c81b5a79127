# SPDX-License-Identifier: MIT
"""The disentanglement comparison example: a tiny run, its tables, the resumable runs."""

import json

import pytest


@pytest.fixture(scope="module")
def example(load_example):
    return load_example("compare_disentanglement")


def test_tiny_study_writes_the_marked_block_and_resumes(example, tmp_path):
    from invprior.cli import main

    data = tmp_path / "d.npz"
    assert main(["simulate", "source", "--n", "64", "--seed", "3", "--out", str(data)]) == 0
    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\nbefore\n{example.START}\nold\n{example.END}\nafter\n")
    settings = dict(
        train=str(data), out=str(tmp_path / "out"), n_train=48, n_heldout=64, epochs=1,
        batch_size=16, seeds=[0], ssvae_seeds=[0, 1],
    )  # fmt: skip
    result = example.run(**settings, write=str(doc))
    text = doc.read_text()
    assert "old" not in text and text.startswith("# Results\n\nbefore\n") and "after" in text
    assert "| aux-vae |" in text and "| hvae |" in text and "| 1% |" in text
    assert "--n-train 48 --n-heldout 64 --epochs 1" in result["command"]
    assert json.loads((tmp_path / "out" / "disentanglement.json").read_text()) == result
    assert set(result["models"]) == set(example.MODELS) and len(result["labelled"]["0.01"]) == 2
    assert result["settings"]["heldout_seed"] == 3 + 1_000_003
    # the 1% semi-supervised runs of the main table are the labelled study's, not retrained
    assert result["models"]["ssvae"][0] == result["labelled"]["0.01"][0]
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    assert len(runs) == 3 + 2 + 2  # aux, beta, hvae at seed 0; ssvae 1% and 0% at seeds 0, 1
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = example.run(**settings)  # everything comes from the records
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    assert again["models"] == result["models"] and again["labelled"] == result["labelled"]


def test_block_is_appended_to_a_file_without_markers(example, tmp_path):
    doc = tmp_path / "r.md"
    doc.write_text("# Results\n")
    example.write_block(doc, f"{example.START}\nx\n{example.END}\n")
    assert doc.read_text().endswith(
        f"## Disentanglement over training seeds\n\n{example.START}\nx\n{example.END}\n"
    )
