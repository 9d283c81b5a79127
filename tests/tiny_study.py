# SPDX-License-Identifier: MIT
"""A tiny untrained Aux-VAE and a tiny study configuration, shared by the study tests."""

from invprior.priors import AuxVAE, GridSpec

NAMES = ("x0", "y0")

TOML = """
[study]
seed = 0
[mesh]
n = {n}
[sensors]
per_side = 3
[noise]
relative = 0.05
[prior]
name = "{prior}"
[truth]
simulator = "source"
seed = 5
[map]
num_restarts = 1
max_iterations = 5
[mcmc]
num_samples = 6
warmup_steps = 4
num_chains = 2
max_tree_depth = 2
disable_progbar = true
"""


def study_toml(prior, out=None, n=8, baseline=True):
    """The TOML text of a tiny source study on ``prior``, writing into ``out`` if given."""
    text = TOML.format(prior=prior, n=n)
    text += "[baseline]\nnum_fields = 200\n" if baseline else "[baseline]\nenabled = false\n"
    return text + (f'[output]\nfolder = "{out}"\n' if out is not None else "")


def tiny_auxvae():
    """An untrained Aux-VAE on a 16 x 16 grid with the named variables ``NAMES``."""
    return AuxVAE(
        NAMES, ("m", "m"), {n: (0.2, 0.8) for n in NAMES}, [0.5, 0.5], [0.17, 0.17],
        rec_dim=2, grid=GridSpec((16, 16)), channels=(4, 4), hidden=16,
    )  # fmt: skip
