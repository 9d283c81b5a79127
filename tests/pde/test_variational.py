# SPDX-License-Identifier: MIT
"""VariationalProblem: forward values, adjoint gradients, solver choice and bad input.

The forms are those of ``invprior.pde.forms.EXAMPLES``; the built-in models are kept and
the generic class is checked against them on the same mesh and sensors.
"""

import numpy as np
import pytest
from pde_cases import UNIT, misfit_taylor_test, smooth_field, solve_each

pytestmark = [pytest.mark.dolfinx]

FORMS = ("source", "conductivity", "advection_diffusion", "nonlinear", "robin")


def build(case, comm, n=8, grid=(9, 9), k=3, degree=1, **kwargs):
    """A VariationalProblem on the unit square with k x k sensors.

    ``case`` is a name in ``invprior.pde.forms.EXAMPLES`` (with its boundary data, which
    ``kwargs`` override) or a residual.
    """
    import dolfinx.fem

    from invprior.pde import VariationalProblem, grid_sensors, unit_square
    from invprior.pde.forms import EXAMPLES

    if isinstance(case, str):
        case, defaults = EXAMPLES[case]
        kwargs = {**defaults, **kwargs}
    V = dolfinx.fem.functionspace(unit_square(comm, n), ("Lagrange", degree))
    return VariationalProblem(V, case, grid_sensors(UNIT, k), grid, **kwargs)


def build_builtin(case, comm, n=8, grid=(9, 9), k=3, degree=1):
    """The built-in model of ``case`` ("source" or "conductivity"), as :func:`build` would."""
    import dolfinx.fem

    from invprior.pde import ConductivityProblem, SourceProblem, grid_sensors, unit_square

    cls = {"source": SourceProblem, "conductivity": ConductivityProblem}[case]
    V = dolfinx.fem.functionspace(unit_square(comm, n), ("Lagrange", degree))
    return cls(V, grid_sensors(UNIT, k), grid)


# The five catalogued forms through VariationalProblem, and the two built-in models.
MODELS = [
    *[(case, build) for case in FORMS],
    *[(case, build_builtin) for case in ("source", "conductivity")],
]
MODEL_IDS = [f"{case}-{'variational' if b is build else 'builtin'}" for case, b in MODELS]


@pytest.mark.mpi
@pytest.mark.parametrize(("case", "builder"), MODELS, ids=MODEL_IDS)
def test_taylor_rate_two_through_the_adjoint(comm, case, builder):
    result = misfit_taylor_test(builder(case, comm))
    np.testing.assert_allclose(result["rates"], 2.0, atol=0.05)


@pytest.mark.mpi
@pytest.mark.parametrize(("case", "builder"), MODELS, ids=MODEL_IDS)
def test_gradcheck_through_torch_forward(comm, case, builder):
    import torch

    from invprior.bridge import TorchForward

    forward = TorchForward(builder(case, comm, n=4, grid=(3, 3), k=2))
    batch = np.stack([smooth_field((3, 3), 0.5), smooth_field((3, 3), -0.3)])
    field = torch.tensor(batch, requires_grad=True)  # shape (2, 3, 3)
    assert torch.autograd.gradcheck(forward, (field,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_analysis_of_the_forms(comm):
    from invprior.pde.base import AffineForwardModel

    expected = {  # linear, symmetric, affine, fixed operator
        "conductivity": (True, True, False, False),
        "advection_diffusion": (True, False, False, False),
        "nonlinear": (False, False, False, False),
        "robin": (True, True, False, False),
    }
    for case, flags in expected.items():
        p = build(case, comm)
        assert (p.linear, p.symmetric, p.affine, p.fixed_operator) == flags, case
        assert not isinstance(p, AffineForwardModel)
    p = build("source", comm)
    assert (p.linear, p.symmetric, p.affine, p.fixed_operator) == (True, True, True, True)
    assert isinstance(p, AffineForwardModel)
    assert not isinstance(build("source", comm, affine=False), AffineForwardModel)


@pytest.mark.mpi
@pytest.mark.parametrize("degree", [1, 2])
def test_reproduces_the_source_problem(comm, degree):
    """Same mesh, sensors and form: observations, gradients and dense map to 1e-10."""
    reference = build_builtin("source", comm, degree=degree)
    problem = build("source", comm, degree=degree)
    m, cot = smooth_field((9, 9), 3.0), np.linspace(-1.0, 1.0, 9)
    np.testing.assert_allclose(problem.forward(m), reference.forward(m), rtol=0, atol=1e-10)
    np.testing.assert_allclose(problem.vjp(m, cot), reference.vjp(m, cot), rtol=0, atol=1e-10)
    assert (problem.counter.forward, problem.counter.adjoint) == (1, 1)  # factorised once
    for got, want in zip(problem.affine_map(), reference.affine_map(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.mpi
@pytest.mark.parametrize("degree", [1, 2])
def test_reproduces_the_conductivity_problem(comm, degree):
    """Same mesh, sensors and form: observations and gradients to 1e-10, for two fields."""
    reference = build_builtin("conductivity", comm, degree=degree)
    problem = build("conductivity", comm, degree=degree)
    cot = np.linspace(-1.0, 1.0, 9)
    for scale in (0.5, -1.5):  # a new field re-assembles the operator in both
        m = smooth_field((9, 9), scale)
        y = reference.forward(m)
        assert np.abs(y).max() > 1e-3  # the comparison is not between zeros
        np.testing.assert_allclose(problem.forward(m), y, rtol=0, atol=1e-10)
        want = reference.vjp(m, cot)
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(problem.vjp(m, cot), want, rtol=0, atol=1e-10)
    assert (problem.counter.forward, problem.counter.adjoint) == (2, 2)


@pytest.mark.parametrize(("degree", "rate"), [(1, 2.0), (2, 3.0)])
def test_manufactured_advection_diffusion(comm, degree, rate):
    """u = sin(pi x) sin(pi y) for -div(e^m grad u) + w . grad u = f, m = 0.3."""
    import ufl

    from invprior.pde import convergence_rates, l2_error

    def exact(x):
        return ufl.sin(ufl.pi * x[0]) * ufl.sin(ufl.pi * x[1])

    def form(u, m, v):
        x = ufl.SpatialCoordinate(u.function_space.mesh)
        w = ufl.as_vector((3.0, 1.0))
        f = -np.exp(0.3) * ufl.div(ufl.grad(exact(x))) + ufl.dot(w, ufl.grad(exact(x)))
        return (
            ufl.exp(m) * ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.dot(w, ufl.grad(u)) * v - f * v
        ) * ufl.dx

    sizes, errors = [8, 16], []
    for n in sizes:
        problem = build(form, comm, n=n, degree=degree)
        obs = problem.forward(np.full((9, 9), 0.3))
        errors.append(l2_error(problem.u, exact))
    points = problem.sensors.points
    want = np.sin(np.pi * points[:, 0]) * np.sin(np.pi * points[:, 1])
    np.testing.assert_allclose(obs, want, atol=0.01 if degree == 1 else 1e-3)
    assert convergence_rates([1 / n for n in sizes], errors)[0] == pytest.approx(rate, abs=0.15)


@pytest.mark.skip_in_parallel
def test_dense_map_matches_the_solves(comm):
    import torch

    from invprior.bridge import DenseObservationMap, TorchForward

    affine = build("source", comm, n=4, grid=(4, 4), k=2)
    field = torch.tensor(smooth_field((4, 4), 2.0))
    torch.testing.assert_close(DenseObservationMap(affine)(field), TorchForward(affine)(field))


def test_solver_matches_the_operator(comm):
    """Cholesky only for a symmetric operator; LU otherwise, also for the adjoint."""
    sym = build("source", comm)
    assert sym._solver.ksp.getPC().getType() == "cholesky" and sym._adj_solver is None
    adv = build("advection_diffusion", comm)
    assert adv._solver.ksp.getPC().getType() == "lu"
    assert adv._adj_solver.ksp.getPC().getType() == "lu"
    assert build("nonlinear", comm)._newton.solver.getKSP().getPC().getType() == "lu"
    forced = build("source", comm, symmetric=False)
    assert forced._solver.ksp.getPC().getType() == "lu"
    m, cot = smooth_field((9, 9)), np.linspace(-1.0, 1.0, 9)
    np.testing.assert_allclose(forced.vjp(m, cot), sym.vjp(m, cot), rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="not symmetric.*pc_type='cholesky'"):
        build("advection_diffusion", comm, petsc_options={"pc_type": "cholesky"})
    with pytest.raises(ValueError, match="symmetric=True was declared"):
        build("advection_diffusion", comm, symmetric=True)
    with pytest.raises(ValueError, match="linear=True was declared"):
        build("nonlinear", comm, linear=True)


def test_newton_failure_names_the_reason(comm):
    from invprior.pde import PDESolveError

    problem = build("nonlinear", comm, newton_options={"snes_max_it": 1})
    with pytest.raises(PDESolveError, match=r"SNES converged reason DIVERGED_MAX_IT \(-5\)"):
        problem.forward(np.zeros((9, 9)))
    assert problem.counter.forward == 0


def test_bad_forms_and_tags_are_rejected(comm):
    import ufl

    from invprior.pde import tag_boundaries, unit_square
    from invprior.pde.forms import source_form

    def functional(u, m, v):
        return m * ufl.inner(ufl.grad(u), ufl.grad(u)) * ufl.dx

    def bilinear(u, m, v):
        w = ufl.TrialFunction(u.function_space)
        return m * ufl.inner(ufl.grad(w), ufl.grad(v)) * ufl.dx

    def no_parameter(u, m, v):
        return (ufl.inner(ufl.grad(u), ufl.grad(v)) - v) * ufl.dx

    def no_state(u, m, v):
        return m * v * ufl.dx

    for form, match in [
        (functional, "linear in the test function v alone.*none"),
        (bilinear, "linear in the test function v alone.*number 1"),
        (no_parameter, "parameter m does not appear"),
        (no_state, "state u does not appear"),
    ]:
        with pytest.raises(ValueError, match=match):
            build(form, comm)
    with pytest.raises(TypeError, match="must return a UFL form"):
        build(lambda u, m, v: m * v, comm)
    mesh = unit_square(comm, 4)
    tags = tag_boundaries(mesh, {1: lambda x: np.isclose(x[0], 0.0)})
    with pytest.raises(ValueError, match=r"boundary tag\(s\) \[7\] mark no facet; .* \[1\]"):
        build("source", comm, dirichlet=[(1, 0.0)], neumann=[(7, 1.0)], facet_tags=tags)
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=tags)
    source = source_form()
    with pytest.raises(ValueError, match=r"\[9\] mark no facet"):
        build(lambda u, m, v: source(u, m, v) + u * v * ds(9), comm, facet_tags=tags)


@pytest.mark.mpi
@pytest.mark.parametrize("case", ["source", "conductivity", "advection_diffusion", "nonlinear"])
def test_pure_neumann_is_a_named_error_on_every_rank(comm, case):
    """No Dirichlet part and nothing else to fix the constant: every rank raises, none hangs."""
    with pytest.raises(ValueError, match="operator is singular.*pure Neumann"):
        build(case, comm, dirichlet=())
    assert comm.allgather(comm.rank) == list(range(comm.size))  # every rank got here


@pytest.mark.mpi
@pytest.mark.parametrize("case", ["advection_diffusion", "nonlinear"])
def test_one_and_all_ranks_agree(comm, case):
    from mpi4py import MPI

    field, cot = smooth_field((9, 9), 0.5), np.linspace(-1.0, 1.0, 16)
    make = lambda c: build(case, c, n=12, k=4)  # noqa: E731
    (y1, g1), (yn, gn) = solve_each(make, (MPI.COMM_SELF, comm), field, cot)
    np.testing.assert_allclose(yn, y1, rtol=1e-9)
    np.testing.assert_allclose(gn, g1, rtol=1e-9, atol=1e-12)
    assert np.array_equal(comm.bcast(yn, root=0), yn)


@pytest.mark.skip_in_parallel
def test_advection_diffusion_example_runs_tiny(tmp_path, load_example):
    example = load_example("advection_diffusion")
    summary = example.run(n=8, grid=9, sensors=2, wind=(6.0, 0.0))
    assert summary["symmetric"] is False and summary["linear"] is True
    assert summary["taylor_rate"] == pytest.approx(2.0, abs=0.05)
    assert summary["solves"] == {"forward": 7, "adjoint": 1}
    # Downwind sensors see more of the source than upwind ones.
    assert summary["obs_downwind_over_upwind"] > 1.0
