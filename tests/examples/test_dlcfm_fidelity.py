# SPDX-License-Identifier: MIT
"""``examples/dlcfm_fidelity.py``: a tiny run compares a flow with its Aux-VAE."""

import torch

from invprior.priors import AuxVAE, DLCFMGenerator, GridSpec, save


def test_example_compares_the_flow_with_its_auxvae(tmp_path, load_example):
    example = load_example("dlcfm_fidelity")
    torch.manual_seed(0)
    # the example scores the four named factors of the source simulator
    names = ("x0", "y0", "amplitude", "width")
    ranges = {"x0": (0.2, 0.8), "y0": (0.2, 0.8), "amplitude": (0.5, 2.0), "width": (0.04, 0.1)}
    base = AuxVAE(names, ["m"] * 4, ranges, [0.5, 0.5, 1.2, 0.07], [0.2, 0.2, 0.4, 0.02], 2,
                  GridSpec((16, 16)), (4,), 8)  # fmt: skip
    flow = DLCFMGenerator(base, channels=2, embed=4, steps=1)
    stem = save(flow, tmp_path / "flow", {"data": {"simulator": "source", "seed": 1}})
    result = example.run(str(stem.with_suffix("")), n=20, out=tmp_path / "out")
    assert set(result) == {"dl-cfm", "aux-vae"} and result["dl-cfm"]["n"] == 20
    assert (tmp_path / "out" / "fidelity.png").is_file()
