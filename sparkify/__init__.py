"""Sparkify data lake ETL: song and event JSON in, a star schema in Parquet out."""
