"""Entry points: each command's options and exit code (etl.py; python -m sparkify.emr, analyst, maintain, replay,
catalog)."""
