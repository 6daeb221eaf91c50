"""Sparkify data lake ETL: song and event JSON to a star schema (see README.md and docs/architecture.md)."""
