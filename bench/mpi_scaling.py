# SPDX-License-Identifier: MIT
"""Strong scaling of forward plus adjoint on a large mesh; the last line is one JSON object.

Run: ``python bench/mpi_scaling.py`` (not under mpiexec). It launches itself as
``mpiexec -n k python bench/mpi_scaling.py --worker`` for each k in ``--ranks`` (default 1
and 2), with the ``mpiexec`` next to the interpreter (the one of the venv's MPI), and one
thread per rank. Defaults: 512x512 P1 mesh of the unit square (263,169 dofs), 8x8 = 64
sensors, a 128x128 grid field, the direct (MUMPS) solver, median of 3 repeats.

Each worker times, for both forward models, ``forward`` and one gradient (``forward`` plus
``vjp``: the forward and the adjoint solve with the grid transfers; for the conductivity
problem each new field also means assembly and a new factorisation or multigrid set-up),
runs a Taylor test of the gradient, and records the peak resident memory of every rank
(``ru_maxrss``). The summary holds ``ndofs``, ``source_s`` and ``conductivity_s`` (gradient
time per rank count), ``peak_rss_mb`` (per rank count, one value per rank) and
``efficiency`` = t(1 rank) / (2 t(2 ranks)) per problem; ``runs`` keeps every worker's
numbers.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import time

PROBLEMS = ("source", "conductivity")
# Variables set by MPI launchers in the processes they start.
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def peak_rss_mb():
    """Peak resident memory of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**2 if sys.platform == "darwin" else 1024)


def worker(n, grid, sensors, repeats, solver):
    """One measurement on ``MPI.COMM_WORLD``; returns the numbers (the same on every rank)."""
    from mpi4py import MPI

    # The sibling benchmark's timing loop: warm-up, then medians of forward and gradient.
    from forward_adjoint import UNIT, _measure

    from invprior.pde import ConductivityProblem, SourceProblem, grid_sensors, unit_square

    comm = MPI.COMM_WORLD
    import_rss = peak_rss_mb()
    points, shape = grid_sensors(UNIT, sensors), (grid, grid)
    start = time.perf_counter()
    mesh = unit_square(comm, n)
    source = SourceProblem(mesh, points, shape, solver=solver)
    setup_s = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    result = {"ranks": comm.size, "ndofs": source.V.dofmap.index_map.size_global}
    result |= {"n_obs": source.n_obs, "grid": list(shape), "solver": solver}
    result["source_setup_s"] = setup_s
    builders = {
        "source": lambda: source,
        "conductivity": lambda: ConductivityProblem(mesh, points, shape, solver=solver),
    }
    for name, build in builders.items():
        problem = build()  # one problem alive at a time, so the peak memory is not a sum
        forward_s, gradient_s, rate = _measure(problem, shape, repeats, comm)
        result |= {f"{name}_forward_s": forward_s, f"{name}_s": gradient_s}
        result[f"taylor_rate_{name}"] = rate
        problem.destroy()
    result["import_rss_mb"] = comm.allgather(import_rss)
    result["peak_rss_mb"] = comm.allgather(peak_rss_mb())
    return result


def find_mpiexec(given):
    """``given``, else the mpiexec beside the interpreter, else the one on ``PATH``."""
    if given:
        candidates = [given]
    else:
        candidates = [pathlib.Path(sys.executable).parent / "mpiexec", shutil.which("mpiexec")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return str(path)
    raise SystemExit(
        f"error: no executable mpiexec at {given}"
        if given
        else "error: no mpiexec beside the interpreter or on PATH; pass --mpiexec PATH"
    )


def launch(mpiexec, ranks, args):
    """Run one worker on ``ranks`` processes and return its JSON result."""
    cmd = [mpiexec, "-n", str(ranks), sys.executable, str(pathlib.Path(__file__).resolve())]
    cmd += ["--worker", "--n", str(args.n), "--grid", str(args.grid)]
    cmd += ["--sensors", str(args.sensors), "--repeats", str(args.repeats)]
    cmd += ["--solver", args.solver]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # one core per rank: MUMPS' BLAS must not oversubscribe
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=args.timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise SystemExit(f"error: {' '.join(cmd)} ran past --timeout {args.timeout} s") from err
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(
            f"error: {' '.join(cmd)} exited with {done.returncode}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1])


def summarise(runs):
    """Times, memory and efficiencies per rank count from the workers' results."""
    by_ranks = {str(run["ranks"]): run for run in runs}
    summary = {key: runs[0][key] for key in ("ndofs", "n_obs", "grid", "solver")}
    summary["ranks"] = [run["ranks"] for run in runs]
    for name in PROBLEMS:
        summary[f"{name}_s"] = {k: run[f"{name}_s"] for k, run in by_ranks.items()}
    summary["peak_rss_mb"] = {k: run["peak_rss_mb"] for k, run in by_ranks.items()}
    base = by_ranks.get("1")
    scaled = {
        k: {name: base[f"{name}_s"] / (run["ranks"] * run[f"{name}_s"]) for name in PROBLEMS}
        for k, run in by_ranks.items()
        if base is not None and k != "1"
    }
    summary["efficiency"] = scaled.get("2", dict.fromkeys(PROBLEMS))
    summary["efficiency_by_ranks"] = scaled
    summary["runs"] = runs
    return summary


def main(args):
    if args.worker:
        from mpi4py import MPI

        result = worker(args.n, args.grid, args.sensors, args.repeats, args.solver)
        if MPI.COMM_WORLD.rank == 0:
            print(json.dumps(result), flush=True)
        return
    if any(var in os.environ for var in LAUNCHER_VARIABLES):
        raise SystemExit(
            "error: run `python bench/mpi_scaling.py` without mpiexec; it starts one "
            "mpiexec per rank count itself (see --ranks)"
        )
    mpiexec = find_mpiexec(args.mpiexec)
    runs = []
    for ranks in args.ranks:
        run = launch(mpiexec, ranks, args)
        print(
            f"{ranks} rank(s): source {run['source_s']:.3f} s, conductivity "
            f"{run['conductivity_s']:.3f} s, peak RSS {max(run['peak_rss_mb']):.0f} MiB",
            flush=True,
        )
        runs.append(run)
    print(json.dumps(summarise(runs)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="mesh squares per side")
    parser.add_argument("--grid", type=int, default=128, help="grid nodes per side")
    parser.add_argument("--sensors", type=int, default=8, help="sensors per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--solver", choices=("direct", "iterative"), default="direct")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts")
    parser.add_argument("--mpiexec", help="launcher; default the one beside the interpreter")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per launch")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    main(parser.parse_args())
