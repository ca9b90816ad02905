# Two commands on a fresh machine: `make run` and `make test`. Each sets itself up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck browser worker bench bench-scaling clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,devstack]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m stack

worker: $(STAMP)
	$(BIN)/python worker.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	# Checked on its own: together with the rest, mypy 2.4 mis-solves the SDK's handle
	# overloads once bench's no-argument workflow is in the same run.
	$(BIN)/mypy bench

# The browser tests (tests/browser.py: Playwright) drive a headless chromium: Debian's,
# installed once here when missing, so no test spends its time on a package manager.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: lint typecheck browser
	$(BIN)/pytest

# Not part of `make test`: figures, not pass/fail (see bench/run.py for what is covered).
bench: $(STAMP)
	$(BIN)/python -m bench.run

# Not part of `make test` either: 1, 2 and 4 workers on one backlog, and the worker cache
# (docs/scaling.md); a few minutes on a quiet machine, and it stops by itself after 15.
bench-scaling: $(STAMP)
	$(BIN)/python -m bench.scaling

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
