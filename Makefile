# Two commands on a fresh machine with Python >= 3.10 (README "Install"):
#   make run     # creates .venv if needed, installs, trains InfMasking on Trifeatures, probes;
#                # run again, it shows the finished result (train again: --overwrite true)
#   make test    # same set-up if needed, then lint and the CI test suite (one pytest
#                # worker per core: pytest-xdist's -n auto)
# TORCH chooses the PyTorch build when .venv is created: the default is the CPU build pinned
# below; for a GPU machine the same version from a CUDA wheel index, e.g.
#   make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
# An existing .venv keeps its build: TORCH given for a .venv made with another one is an
# error; `make clean` removes .venv to switch.
# VENV chooses where the environment lives (CI uses a temporary one).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup run test clean check-torch

$(BIN)/infmasking:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is needed"'
	@echo "Creating $(VENV): PyTorch ($(TORCH)), infmasking and its test tools (a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q ruff==0.17.6
	@echo '$(TORCH)' > $(VENV)/torch-build.txt

# TORCH named on the command line or in the environment must be the build .venv holds
check-torch: $(BIN)/infmasking
	@case "$(origin TORCH)" in command*|environment*) \
	  have=$$(cat $(VENV)/torch-build.txt 2>/dev/null || echo "an unrecorded build"); \
	  if [ "$$have" != '$(TORCH)' ]; then \
	    echo "make: $(VENV) holds PyTorch from '$$have', not TORCH='$(TORCH)'; run 'make clean' to remove $(VENV), then this command again (or VENV=DIR for a second environment)" >&2; \
	    exit 1; \
	  fi;; \
	esac

setup: $(BIN)/infmasking check-torch

run: setup
	$(BIN)/infmasking train

test: setup
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/python -m pytest -q -n auto --durations=15

clean:
	rm -rf $(VENV)
