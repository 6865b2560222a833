# llm-log-audit — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
LOGS   ?= sample_logs
OUT    ?= out
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help audit ingest test lint format weekly bench check clean sample mutate

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

audit: $(STAMP) ## Run the whole pipeline on LOGS (default sample_logs) into OUT (default out)
	$(BIN)/logaudit run $(LOGS) --out $(OUT)
	@echo "Open $(OUT)/report/report.html (also report.md, report.json)"

ingest: $(STAMP) ## Ingest LOGS into OUT only
	$(BIN)/logaudit ingest $(LOGS) --out $(OUT)

weekly: $(STAMP) ## Weekly data-quality report over OUT (exit code 3 on regressions)
	$(BIN)/logaudit weekly $(OUT)

# Two pytest workers, a test file per worker at a time (module fixtures built once): the suite's
# wall time on 2 cores drops from ~15 to ~10 minutes. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) ## Lint and run the test suite (TEST_WORKERS pytest workers, default 2)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP) ## ruff check + format check + mypy over pipeline/ audit/ schemas/ (config: pyproject.toml [tool.mypy])
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff format
	$(BIN)/ruff format .

check: lint test ## lint + tests

bench: $(STAMP) ## Benchmarks (BENCH_REQUESTS, default 200000; BENCH_ARGS for bench.run options); never part of `make test`
	$(BIN)/python -m bench.run --requests $${BENCH_REQUESTS:-200000} $(BENCH_ARGS)

MUTATE_STAMP := $(VENV)/.installed-mutate
$(MUTATE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev,mutate]'
	@touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP) ## Mutation testing of the figure modules (MODULES="cache_sim cost" for some); never part of `make test`
	nice -n 10 $(BIN)/python -m mutation.run $(MODULES)

sample: $(STAMP) ## Regenerate the committed sample logs (deterministic)
	$(BIN)/python sample_logs/generate.py --out sample_logs --requests 4000 --days 45 --seed 7

clean: ## Remove OUT and caches (keeps the venv)
	rm -rf $(OUT) .pytest_cache .ruff_cache .mutate
