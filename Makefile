# The dev loop. `make run` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format bench messages clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)  ## Start Syndicate on the embedded defaults with the demo corpus
	$(BIN)/syndicate run --seed-demo

# One pytest worker a core, at most four: most tests wait on real processes, servers and ports,
# so two at once halve the wall time; four at once (two suites side by side) is what has been run
# against one PostgreSQL server and its 100 connections. Work stealing, as the test times range
# from milliseconds to a minute.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))
test: $(INSTALLED)  ## Run the test suite (PostgreSQL tests need SYNDICATE_TEST_POSTGRES_URL)
	$(BIN)/pytest --numprocesses $(TEST_WORKERS) --dist worksteal

lint: $(INSTALLED)  ## Style, types, the import rules (import-linter contracts in pyproject.toml), room sizes
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/check_sizes.py

format: $(INSTALLED)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

bench: $(INSTALLED)  ## Measure feed building and serving, sending, ingest, bounce reading, webhooks, bucket publishing and scaling; see bench/RESULTS.md
	bench/run

messages: $(INSTALLED)  ## Refresh the translation catalogs after changing strings
	$(BIN)/pybabel extract -F babel.cfg -o src/syndicate/locale/syndicate.pot .
	$(BIN)/pybabel update -i src/syndicate/locale/syndicate.pot -d src/syndicate/locale -D syndicate --no-fuzzy-matching

clean:
	rm -rf $(VENV) var feeds/* .pytest_cache .mypy_cache .ruff_cache
