PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Optional Debian packages for extra checks (scripts/system-deps.sh says what each is for).
SYSTEM_PACKAGES := docker-compose faketime chromium chromium-driver

.PHONY: install system-deps fonts demo test test-future lint fmt unit integration bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) fonts

# The letters' CJK font comes from PyPI and is converted once (about 30 s) into ~/.cache/dunning.
fonts: $(STAMP)
	@$(BIN)/python -m dunning.channels.letter.font_outlines >/dev/null

system-deps:
	@bash scripts/system-deps.sh $(SYSTEM_PACKAGES)

# `make demo DEMO_ARGS=--console` then serves the operator console until Ctrl-C.
demo: install
	$(BIN)/dunning demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check dunning tests bench
	$(BIN)/ruff format --check dunning tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix dunning tests bench
	$(BIN)/ruff format dunning tests bench

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration tests/e2e

test: system-deps install lint
	$(BIN)/pytest -q

# The unit and end-to-end tests with the machine's clock a year ahead: nothing may depend on
# today's date (docs/operations.md, "Dates and clocks").
test-future: system-deps install
	@command -v faketime >/dev/null || { echo "faketime is not installed (apt-get install faketime)"; exit 2; }
	faketime -f '+365d' $(BIN)/pytest -q -p no:cacheprovider tests/unit tests/e2e

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
