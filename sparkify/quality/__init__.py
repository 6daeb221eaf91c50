"""Quality: the data-quality checks over the written tables, and the run's summary."""
