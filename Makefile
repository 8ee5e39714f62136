# adagg: the two commands of the README are `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test test-fast test-integration test-e2e setup down clean

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jdk-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required (apt-get install maven)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q 'uv>=0.13'
	$(BIN)/uv pip install -p $(BIN)/python -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)            ## venv + Python packages + JVM artifacts (Maven Central)
	$(BIN)/adagg setup

demo: setup                ## start the stack, create tables, run the job, send traffic, show results
	$(BIN)/adagg demo

test: setup                ## every tier, fast to slow: unit, integration (Kafka + mini-cluster), e2e (whole stack)
	$(BIN)/python -m pytest tests/unit tests/integration tests/e2e

test-fast: $(STAMP)        ## unit tier only: no JVM, seconds
	$(BIN)/python -m pytest tests/unit -q

test-integration: setup
	$(BIN)/python -m pytest tests/integration

test-e2e: setup
	$(BIN)/python -m pytest tests/e2e

down:                      ## stop the local stack
	$(BIN)/adagg stack down

clean: down                ## stop the stack and delete its data, logs and fetched jars
	rm -rf .adagg
