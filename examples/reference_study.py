# SPDX-License-Identifier: MIT
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # How close is the learned posterior to the exact one? Many truths, two priors
#
# `examples/simulator_posterior.py` samples one study's data under the simulator's own
# prior. This driver does it for many held-out truths at once and sets the learned prior's
# posterior beside the exact-prior one on the same data: per named parameter the ratio of
# the 90% interval widths (learned / exact), both hit rates and errors and the Wasserstein
# distance between the marginals; for the field both posterior means' errors, coverage and
# CRPS (`invprior.study.reference`).
#
# Both posteriors are sampled with the same sampler, set here (by default batched ChEES-HMC,
# 8 chains x (150 warm-up + 100 draws), what docs/results.md ran): the study's own
# `[mcmc]` table is the demo's two NUTS chains, far too slow for tens of posteriors.
# Everything else (mesh, sensors, noise, prior, approximation
# error, MAP) is the study's TOML; `--prior` and `--tau` replace its `[prior]` name and
# link scale, to measure another learned prior on the same truths and data.
#
# `python examples/reference_study.py examples/source_identification.toml --truths 20
# --out results/reference_study` (about 80 minutes on one core)
#
# keeps every finished truth in `results/reference_study/truths/` (an interrupted run
# resumes; `--shard K/N` runs every N-th truth from the K-th, so N processes can share the
# folder) and its exact-prior posterior in `exact/`, and writes `reference.{md,json,png}`
# from every record of this configuration in the folder, printing the summary as one JSON
# line last. The exact posteriors do not depend on the learned prior: a study of another
# `--prior` with its own `--out` and `--exact results/reference_study/exact` samples only
# its learned posteriors, a third of the time. `--summary-only` samples nothing: it
# summarises `OUT/reference.json` again with this code, adding to records of older code the
# named factors of each truth's best fit by the generator.

# +
import argparse
import dataclasses
import json
from pathlib import Path

from invprior.cache import ResultCache, parse_shard
from invprior.fileio import save_figure, write_json, write_text
from invprior.study import SamplerConfig, StudyConfig, reference
from invprior.study.setup import load_generator, study_prior
from invprior.validation import InputError

# -


def study_config(
    config,
    kernel="chees",
    num_chains=8,
    warmup_steps=150,
    num_samples=100,
    prior=None,
    tau=None,
):
    """The study of ``config`` with the reference study's sampler in place of its ``[mcmc]``.

    ``prior`` and ``tau``, when given, replace ``[prior] name`` and ``[prior] tau``: the
    same truths and data under another learned prior.
    """
    study = StudyConfig.from_toml(config)
    mcmc = SamplerConfig(
        kernel=kernel,
        num_chains=num_chains,
        warmup_steps=warmup_steps,
        num_samples=num_samples,
        disable_progbar=True,
    )
    settings = study.prior
    if prior is not None or tau is not None:
        settings = dataclasses.replace(
            settings,
            name=prior if prior is not None else settings.name,
            tau=tau if tau is not None else settings.tau,
        )
    return dataclasses.replace(study, mcmc=mcmc, prior=settings)


def run(
    config,
    truths=20,
    families=("in_distribution",),
    shard=(0, 1),
    out=None,
    exact=None,
    summary_only=False,
    **sampler,
):
    """Run this shard's truths; with ``out``, write the summary of every finished truth.

    ``summary_only`` samples nothing: it summarises again the records of
    ``out/reference.json``, whatever code wrote them, adding what they lack (the named
    factors of each truth's projection, :func:`invprior.study.reference.complete_projections`).

    Returns:
        ``{"summary": per family, "truths": the number summarised}``.
    """
    study = study_config(config, **sampler)
    if summary_only:
        if out is None:
            raise InputError("--summary-only reads the records of an --out folder")
        try:
            records = json.loads((Path(out) / "reference.json").read_text())["truths"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"{Path(out) / 'reference.json'}: no study records: {err}") from err
    else:
        records = reference.reference_study(
            study, truths, families=families, out=out, exact=exact, shard=shard, progress=True
        )
    if out is not None and not summary_only:  # every shard's finished truths
        cache = ResultCache(Path(out) / "truths", reference.settings_of(study, families))
        keys = [f"{f}-{i:03d}" for f in families for i in range(truths)]
        records = [r for r in map(cache.get, keys) if r is not None]
    generator = load_generator(study)
    records = reference.complete_projections(study, records, generator)
    # the width a generator without representation error would leave through the link
    floor = reference.link_floor(study_prior(study, generator))
    summary = reference.summarise(records, floor)
    if out is not None:
        write_json(
            Path(out) / "reference.json",
            {"summary": summary, "link_floor": floor, "truths": records},
        )
        write_text(Path(out) / "reference.md", reference.markdown(summary))
        save_figure(reference.plot_reference(records), Path(out) / "reference.png")
    return {"summary": summary, "truths": len(records)}


def main():
    parser = argparse.ArgumentParser(
        description="Learned against exact-prior posteriors of a source study on many truths"
    )
    parser.add_argument("config", help="a source study's TOML file")
    parser.add_argument("--truths", type=int, default=20, help="truths per family")
    parser.add_argument(
        "--families", nargs="+", default=["in_distribution"], choices=reference.FAMILIES
    )
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th truth from the K-th")
    parser.add_argument("--kernel", default="chees", choices=("chees", "nuts", "hmc"))
    parser.add_argument("--num-chains", type=int, default=8)
    parser.add_argument("--warmup-steps", type=int, default=150)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--prior", help="replaces [prior] name: a shipped name or checkpoint")
    parser.add_argument("--tau", type=float, help="replaces [prior] tau, the link's scale")
    parser.add_argument("--out", default="results/reference_study", help="output folder")
    parser.add_argument(
        "--exact", help="folder of the exact-prior posteriors to read and add to (OUT/exact)"
    )
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="sample nothing: summarise OUT/reference.json's records again with this code",
    )
    args = parser.parse_args()
    try:
        k, n = parse_shard(args.shard)
    except ValueError as err:
        parser.error(f"--shard: {err}")
    try:
        result = run(
            args.config,
            args.truths,
            tuple(args.families),
            (k, n),
            args.out,
            args.exact,
            args.summary_only,
            kernel=args.kernel,
            num_chains=args.num_chains,
            warmup_steps=args.warmup_steps,
            num_samples=args.num_samples,
            prior=args.prior,
            tau=args.tau,
        )
    except InputError as err:
        parser.error(str(err))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
