# Two entry points a newcomer needs: `make demo` and `make test`. Each creates the local
# virtual environment .venv on first use and installs exactly the versions in requirements.lock
# (the ones the tests and benchmarks ran with), then the project itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint types layers check-code bench lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/allocator solve instances/k_city --out results/k_city
	$(BIN)/allocator check instances/k_city results/k_city

# the whole suite: lint, types, the layers contract, then every test
test: check-code
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check allocator tests benchmarks

types: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

check-code: lint types layers

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --suite all

# after changing dependencies in pyproject.toml: pin them again (then commit the lock)
lock: $(STAMP)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
