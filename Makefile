# reluopt: `make demo` and `make test` install everything they need into .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[dev,sklearn,torch,plot,dask,scip,pyomo]"
	touch $(STAMP)

install: $(STAMP)

DEMO_MODEL := examples/peaks/models/peaks_2-64-64-1.npz

demo: $(STAMP)
	@echo "Minimise a 2-64-64-1 ReLU surrogate of the peaks function over [-3,3]^2 (input-space branch and bound, certified):"
	$(VENV)/bin/reluopt solve $(DEMO_MODEL) --box=-3,3 --minimize 0 --method bab --time-limit 60
	@echo "For reference: the peaks function itself has its global minimum -6.5511 at (0.228, -1.626)."

# ruff, then mypy on src/ ([tool.mypy] in pyproject.toml), then the tests on two worker processes
# (pytest-xdist: the suite takes about 4 min instead of 6 on a 2-core machine; every test is
# independent of order and process); pytest ends with its summary line (passed / skipped, with the
# skip reasons: addopts -rs). One process: `.venv/bin/python -m pytest -p no:cacheprovider`.
test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy
	$(PY) -m pytest -p no:cacheprovider -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
