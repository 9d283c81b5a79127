# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # The reference posterior: a source study's data under the simulator's own prior
#
# A study such as `examples/source_identification.toml` answers with a learned prior. The
# simulator that drew its truth defines the exact prior: 14 independent uniform factors
# (`invprior.priors.simulate.SOURCE_PARAMETERS`), the four named ones ($x_0, y_0$,
# amplitude, width) and ten more (anisotropy and orientation, a secondary source, a
# modulation). `invprior.priors.SimulatorGenerator` is that prior as a generator: its named
# block is the named parameters themselves ($\tau = 0$, no link noise), its residual block
# the other ten factors in probit coordinates, $u_k = l_k + (h_k - l_k)\,\Phi(z_k)$, and
# its decoder the simulator. Under `DisentangledPrior` every latent coordinate is then
# standard normal a priori, and the library's MAP and NUTS sample the exact-prior
# posterior of the study's data (measurement noise only).
#
# This is the yardstick for a study's named-parameter intervals and field coverage: what
# the exact prior cannot resolve from these data, no prior learned from the simulator can.
#
# `python examples/simulator_posterior.py examples/source_identification.toml`
#
# writes the study report (`metrics.json`, `summary.txt`, `fields.png`, `traces.png`,
# `pair.png`) to `results/simulator_posterior` and prints the metrics as one JSON line.

# +
import argparse
import json
from dataclasses import replace

from mpi4py import MPI

from invprior import infer
from invprior.datatree import to_arviz
from invprior.report import study_metrics, write_report
from invprior.study import StudyConfig, build_study, reference
from invprior.study.reference import check_source_study
from invprior.validation import InputError

# -

# The study supplies the mesh, sensors, truth and noisy data; its own prior and its
# approximation-error model play no part here, so the error model is switched off.


def exact_problem(config):
    """The study's set-up and its inverse problem under the simulator's exact prior."""
    study = StudyConfig.from_toml(config)
    check_source_study(study, str(config))
    off = replace(study.approximation_error, enabled=False)
    setup = build_study(replace(study, approximation_error=off), MPI.COMM_SELF)
    return setup, reference.exact_problem(setup, setup.noise_std)


# MAP from several prior draws, then NUTS from the mode with a dense mass matrix.


def run(
    config,
    num_chains=4,
    warmup_steps=1000,
    num_samples=1000,
    num_restarts=8,
    seed=0,
    progress=False,
    out=None,
):
    """Sample the exact-prior posterior of a source study; its metrics as a dict.

    With ``out``, the study report (:func:`invprior.report.write_report`) is written there.
    """
    setup, problem = exact_problem(config)
    mode = infer.map(problem, setup.data, seed=seed, num_restarts=num_restarts, max_iterations=500)
    result = infer.nuts(
        problem,
        setup.data,
        init=mode,
        seed=seed,
        num_chains=num_chains,
        warmup_steps=warmup_steps,
        num_samples=num_samples,
        target_accept_prob=0.9,
        full_mass=True,
        disable_progbar=not progress,
    )
    tree = to_arviz(result, problem, setup.data, include_field=True, truth=setup.truth)
    if out is not None:
        write_report(tree, out)
    return {**study_metrics(tree), "mode_energy": mode.potential_energy, "config": str(config)}


def main():
    parser = argparse.ArgumentParser(
        description="Reference posterior of a source study under the simulator's own prior"
    )
    parser.add_argument("config", help="a source study's TOML file")
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--warmup-steps", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--num-restarts", type=int, default=8, help="L-BFGS restarts of the MAP")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show NUTS progress bars")
    parser.add_argument("--out", default="results/simulator_posterior", help="output folder")
    args = parser.parse_args()
    try:
        metrics = run(
            args.config,
            args.num_chains,
            args.warmup_steps,
            args.num_samples,
            args.num_restarts,
            args.seed,
            args.progress,
            out=args.out,
        )
    except InputError as err:
        parser.error(str(err))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
