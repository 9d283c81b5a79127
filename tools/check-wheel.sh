#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the wheel, install it without -e into a fresh environment (dependencies reused from
# .venv through a path entry, invprior itself only from the wheel) and use it from outside
# the source tree: `invprior --help`, an import of every public module, the same code
# fingerprint as the source tree's, and `invprior run` on a tiny study with a shipped prior
# (so the package data must be in the wheel).
# Usage: tools/check-wheel.sh [VENV]   (default .venv)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(cd "${1:-$root/.venv}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Build from a copy of the files git tracks or would track, so no stale build/ folder or
# other ignored file can slip into the wheel.
mkdir "$work/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
  | tar -xf - -C "$work/src"
"$venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
"$venv/bin/python" -m venv "$work/env"
site() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
# A plain path line: .venv's own .pth files (the editable install's finder) are not run.
site "$venv/bin/python" > "$(site "$work/env/bin/python")/invprior-deps.pth"
# mpich's wheel puts libmpi in the environment's lib/, where mpi4py looks for it.
for lib in "$venv"/lib/lib* "$venv"/lib/mpich; do ln -s "$lib" "$work/env/lib/"; done
"$work/env/bin/python" -m pip install --quiet --no-deps --no-index "$work"/dist/invprior-*.whl

cd "$work"
"$work/env/bin/invprior" --help > /dev/null
"$work/env/bin/python" - <<'PY'
import importlib, pathlib, pkgutil
import invprior
where = pathlib.Path(invprior.__file__).resolve()
assert "site-packages" in where.parts, f"invprior imported from {where}, not the wheel"
modules = [m.name for m in pkgutil.walk_packages(invprior.__path__, "invprior.")]
for name in modules:
    importlib.import_module(name)
from invprior.priors import pretrained_names
assert "source-auxvae" in pretrained_names(), pretrained_names()
print(f"wheel: {len(modules)} modules import from {where.parent}")
PY
# Cached study records are keyed on the code fingerprint: the same sources, installed
# from the wheel or editable, must give the same one.
fingerprint='from invprior.provenance import code_fingerprint; print(code_fingerprint())'
installed=$("$work/env/bin/python" -c "$fingerprint")
editable=$(cd "$root" && "$venv/bin/python" -c "$fingerprint")
test "$installed" = "$editable" || {
  echo "wheel: code fingerprint $installed differs from the source tree's $editable"; exit 1; }
cat > tiny.toml <<'TOML'
[mesh]
n = 6
[sensors]
per_side = 2
[noise]
relative = 0.05
[prior]
name = "source-auxvae"
device = "cpu"
[map]
num_restarts = 1
max_iterations = 3
[mcmc]
num_samples = 5
warmup_steps = 2
num_chains = 2
max_tree_depth = 2
disable_progbar = true
[baseline]
enabled = false
[output]
folder = "tiny-study"
TOML
"$work/env/bin/invprior" run tiny.toml > run.log 2>&1 || { cat run.log; exit 1; }
test -s tiny-study/posterior.nc
tail -n 1 run.log | "$work/env/bin/python" -c 'import json, sys; json.loads(sys.stdin.read())'
echo "wheel: invprior run wrote $(ls tiny-study | wc -l) files"
