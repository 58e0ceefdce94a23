"""Fixtures shared by the project's own tests: a PostgreSQL server per session, a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness.target.postgres import fresh_database, server_url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's libpq URL: `DATABASE_URL` if set, else an embedded server for the session."""
    with server_url(os.environ.get("DATABASE_URL")) as url:
        yield url


@pytest.fixture
def database_url(postgres_server: str) -> Iterator[str]:
    """The libpq URL of a fresh, empty database, dropped after the test."""
    with fresh_database(postgres_server, prefix="iam_test") as url:
        yield url
