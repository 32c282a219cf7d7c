# Schoolgate: `make run` starts the filter on the demo school, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
SG      = $(BIN)/schoolgate
DATA   ?= var
CONFIG ?= config/example.toml
SHARED_UT1 = ../shared/data/ut1-blacklists.tar.gz

export SCHOOLGATE_DATA = $(DATA)
export SCHOOLGATE_CONFIG = $(CONFIG)

.PHONY: install run init test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml setup.py $(wildcard categories/*.c) | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# First use: data dir, CA, register, category index (built-in lists, the configured
# sources that answer, and the UT1 sample beside the repository when it is there).
$(DATA)/.initialised: | $(VENV)/.installed
	$(SG) init
	$(SG) users ban y6.banned --reason "misuse incident (demo school)" --by "demo setup"
	@if [ -f "$(SHARED_UT1)" ]; then $(SG) categories update --from "$(SHARED_UT1)"; fi
	touch $@

init: $(DATA)/.initialised

run: install init
	$(SG) run

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check proxy addons categories alerts reports config bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache *.egg-info
