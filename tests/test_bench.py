# SPDX-License-Identifier: MIT
"""The benchmarks in ``bench/`` run with the tiniest settings and print the keys they promise.

These check that the scripts work, not the numbers they measure.
"""

import importlib
import json
import math
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.dolfinx

BENCH = Path(__file__).resolve().parent.parent / "bench"
PARTS = ("generator_s", "transfer_s", "pde_forward_s", "pde_adjoint_s", "gradient_s")


@pytest.fixture
def bench(monkeypatch):
    """Import a benchmark script by name (``bench/`` on ``sys.path``, as when run)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


@pytest.fixture
def tiny_config(tmp_path):
    """The example's study with a cheap MAP (one restart of 10 steps)."""
    example = (BENCH.parent / "examples" / "source_identification.toml").read_text()
    tiny = example.replace("num_restarts = 4", "num_restarts = 1")
    tiny = tiny.replace("max_iterations = 200", "max_iterations = 10")
    assert tomllib.loads(tiny)["map"] == {"num_restarts": 1, "max_iterations": 10}
    path = tmp_path / "tiny.toml"
    path.write_text(tiny)
    return path


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def assert_positive(result, keys):
    for key in keys:
        assert math.isfinite(result[key]) and result[key] > 0, (key, result[key])


def test_gradient_cost(bench, capsys):
    result = bench("gradient_cost").main(["--problem", "both", "--repeats", "3"])
    assert last_json(capsys) == result
    for prefix in ("", "dense_", "conductivity_"):
        timed = [p for p in PARTS if not (prefix == "dense_" and p == "transfer_s")]
        assert_positive(result, [prefix + p for p in timed])
        assert 0 <= result[prefix + "overhead_fraction"] < 1
        assert math.isfinite(result[prefix + "overhead_fraction_raw"])
    assert result["dense_transfer_s"] == 0.0  # the dense map contains the transfer
    assert result["pde_solves_per_gradient"] == result["conductivity_pde_solves_per_gradient"] == 2
    assert result["dense_pde_solves_per_gradient"] == 0
    assert_positive(result, ["dense_build_s"])


def test_nuts_throughput(bench, capsys, tiny_config):
    argv = ["--warmup", "2", "--samples", "4", "--config", str(tiny_config)]
    result = bench("nuts_throughput").main(argv)
    assert last_json(capsys) == result
    keys = ("ess", "ess_per_s", "ess_per_pde_solve", "grad_evals", "wall_s", "pde_solves")
    assert_positive(result, [prefix + key for prefix in ("", "dense_") for key in keys])
    assert_positive(result, ["dense_build_s", "dense_speedup"])
    assert result["dense_pde_solves"] == result["n_obs"] + 1  # building the map only
    assert result["default"] == "dense=True" and result["default_reason"]


def test_forward_adjoint(bench, capsys):
    result = bench("forward_adjoint").main(["--n", "8", "--grid", "9", "--sensors", "2"])
    assert last_json(capsys) == result
    timed = ("forward_s", "gradient_s", "dense_build_s", "dense_forward_s", "dense_gradient_s")
    timed += ("conductivity_forward_s", "conductivity_gradient_s", "setup_factorise_s")
    timed += ("variational_forward_s", "variational_gradient_s")
    ratios = ("variational_forward_over_handwritten", "variational_over_handwritten")
    assert_positive(result, timed + ratios)
    forms = ("source", "conductivity", "advection_diffusion", "nonlinear", "robin")
    assert sorted(result["taylor_rates"]) == sorted(forms)
    rates = [result["taylor_rate_source"], result["taylor_rate_conductivity"]]
    for rate in [*rates, *result["taylor_rates"].values()]:
        assert rate == pytest.approx(2.0, abs=0.05)
    assert (result["ndofs"], result["n_obs"], result["grid"]) == (81, 4, [9, 9])


def test_map_newton(bench, capsys):
    module = bench("map_newton")
    result = module.main(["--n", "8", "--sensors", "3", "--lbfgs-iterations", "20"])
    assert last_json(capsys) == result
    assert (result["latent_dim"], result["n_obs"]) == (81, 9)
    assert_positive(result, ["map_s", "lbfgs_map_s", "speedup", "gradient_evals_ratio"])
    # exact in one Gauss-Newton step: one batched Jacobian, two gradients, the prior diagonal
    assert (result["map_jacobian_evals"], result["map_gradient_evals"]) == (1, 1 + 1 + 2 + 1)
    assert result["map_vector_jacobian_products"] == 5 + 8
    assert result["map_error"] < 1e-9 and result["map_energy"] <= result["lbfgs_map_energy"]


# 8 warm-up steps leave the shipped prior's ChEES chains where they started: their R-hat
# divides by a zero within-chain variance (and is reported as infinite)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_sampling_throughput(bench, capsys):
    module = bench("sampling_throughput")
    args = ["--chains", "4", "--warmup", "8", "--samples", "8", "--nuts-draws", "6", "--n", "8"]
    args += ["--field-chains", "4", "--field-warmup", "10", "--field-samples", "10"]
    result = module.main(args)
    assert last_json(capsys) == result
    assert (result["num_chains"], result["nuts_num_chains"]) == (4, 2)
    assert (result["num_samples"], result["nuts_num_samples"]) == (8, 6)
    keys = ["ess_per_min_named", "nuts_ess_per_min_named", "speedup_vs_nuts", "map_s"]
    assert_positive(result, keys + ["field_ess_per_min", "field_step_size", "grad_evals"])
    assert result["speedup_vs_nuts"] == pytest.approx(
        result["ess_per_min_named"] / result["nuts_ess_per_min_named"]
    )
    assert result["field_latent_dim"] == 81 and result["map_gradient_evals_ratio"] > 1
    # the exact Laplace preconditioner: the linear-Gaussian posterior is N(0, I) in y
    assert abs(result["field_mean_z"]) < 5 and abs(result["field_sd_z"]) < 5
