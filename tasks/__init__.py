"""Prefect tasks: thin wrappers over mils/ and evaluation/ (retries, logging, per-process model reuse)."""
