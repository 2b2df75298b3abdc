# Two entry points a newcomer needs: `make demo` and `make test`. Each creates the local
# virtual environment .venv on first use and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/allocator solve instances/k_city --out results/k_city
	$(BIN)/allocator check instances/k_city results/k_city

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check allocator tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --suite all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
