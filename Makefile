# The README's two commands: `make demo` and `make test`. Each sets itself up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo lint test test-quick setup bench gpu-wheels clean

setup: $(STAMP)

# The editable install filters setuptools' note, printed for any editable install from two source
# roots (. and plugins), that same-named folders in the working directory could shadow the
# packages: there are none.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fair run configs/demo.toml --run-dir runs/demo

# lint, format, type and layer checks (lint-imports: pyproject's [tool.importlinter] contracts,
# the layers docs/architecture.md lists), run before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -n 2

# everything but the tests marked slow (see CONTRIBUTING.md)
test-quick: lint
	$(PY) -m pytest -n 2 -m "not slow"

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# What benchmarks/gpu_check.sh needs that the lent GPU machine's Python (3.12, with torch,
# transformers, peft and accelerate) lacks, as wheels for a device run to carry: .gpu-wheels
gpu-wheels: $(STAMP)
	$(PY) -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux2014_x86_64 -d .gpu-wheels 'pydantic>=2.6'

clean:
	rm -rf runs .pytest_cache
