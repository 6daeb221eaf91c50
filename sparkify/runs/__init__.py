"""Runs: one engine (plan, read, quarantine, build, publish, verify, report, register) for every mode."""
