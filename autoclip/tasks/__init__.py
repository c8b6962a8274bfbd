"""Prefect tasks: thin wrappers (names, retries, cache keys, tags) around the pure layers."""
