"""Targets: the app under test, started locally (with its own PostgreSQL) or reached at a URL, and what the
harness may read of it besides HTTP (its log, its database)."""
