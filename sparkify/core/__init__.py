"""Core: settings, schemas, errors and what a run did, as plain Python (no Spark, no AWS)."""
