# SPDX-License-Identifier: MIT
"""A tiny study configuration, and the tiny Aux-VAE of ``generators.py`` it runs on."""

from generators import NAMES, tiny_auxvae

__all__ = ["NAMES", "TOML", "study_toml", "tiny_auxvae"]

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
