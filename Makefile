# The two commands a new user needs:
#   make demo  - set up, then run the offline main job (synthesize the stack, run the DR drill)
#   make test  - set up, then lint, type-check and run the whole test suite (Python 3.11), then
#                the service's tests again under the Lambda runtime's Python 3.13 (pyenv), in
#                .venv-runtime; without a 3.13 it says so and the 3.11 run stands
# Also: make mutate - the curated mutation check (tools/mutate.py); slow, not part of `make test`
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-runtime mutate lint bench clean

$(BIN)/payments-dr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/payments-dr

demo: setup
	mkdir -p out
	$(BIN)/payments-dr synth Pulumi.dev.yaml --json out/synth.json
	$(BIN)/payments-dr drill --json out/drill.json --timeline out/drill.png

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2
	$(BIN)/python tools/runtime_tests.py -n 2 -q

test-runtime: setup
	$(BIN)/python tools/runtime_tests.py -n 2 -q

mutate: setup
	$(BIN)/python tools/mutate.py

bench: setup
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .venv-runtime out build *.egg-info
