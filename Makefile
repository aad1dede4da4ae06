# Two commands on a fresh machine with Python >= 3.10 (README "Install"):
#   make run     # creates .venv if needed, installs, trains InfMasking on Trifeatures, probes
#   make test    # same set-up if needed, then lint and the CI test suite (one pytest
#                # worker per core: pytest-xdist's -n auto)
# TORCH chooses the PyTorch build: the default is the CPU build pinned below; for a GPU
# machine, e.g. `make run TORCH="torch --index-url https://download.pytorch.org/whl/cu124"`.
# VENV chooses where the environment lives (CI uses a temporary one).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup run test clean

$(BIN)/infmasking:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e ".[test]"
	$(BIN)/pip install -q ruff==0.17.6

setup: $(BIN)/infmasking

run: setup
	$(BIN)/infmasking train

test: setup
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/python -m pytest -q -n auto --durations=15

clean:
	rm -rf $(VENV)
