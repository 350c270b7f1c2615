"""Benchmarks: scripts that print their figures (not tests). Run one from the repository root as a module,
e.g. `.venv/bin/python -m bench.ingest_api --help`; `bench.harness` is what they share."""
