# SPDX-License-Identifier: MIT
# `make demo` and `make test` set up .venv themselves (Python >= 3.12, `pip install -e .[fem,dev]`).

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= $(shell tools/find-python.sh)
MPIEXEC := $(VENV)/bin/mpiexec
NPROCS  ?= 2
PYTEST_ARGS ?=

.PHONY: demo test test-serial test-mpi test-wheel lint clean-venv

$(PY):
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.12 (see tools/find-python.sh)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[fem,dev]'
	@touch $@

# Source identification on the shipped prior: MAP, then NUTS with one chain per MPI rank;
# the report lands in results/source_identification (the last line printed is the metrics
# JSON).
demo: $(STAMP)
	$(MPIEXEC) -n $(NPROCS) $(VENV)/bin/invprior run examples/source_identification.toml

test: test-serial test-mpi test-wheel

test-serial: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The same suite's `mpi`-marked tests on $(NPROCS) ranks; only rank 0 reports.
test-mpi: $(STAMP)
	$(MPIEXEC) -n $(NPROCS) $(PY) -m pytest -m mpi -p no:cacheprovider $(PYTEST_ARGS)

# The wheel, installed without -e into a fresh environment, run from outside the tree.
test-wheel: $(STAMP)
	tools/check-wheel.sh $(VENV)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean-venv:
	rm -rf $(VENV)
