"""The database: one engine and one session factory per app, built by `create_app`, never at import time.

The app connects with `DATABASE_URL` (the owner, which migrates) and serves as the app role: every new
connection runs `SET ROLE <app role>` before it is used, and refuses to be used if that role would
bypass row-level security. So the policies bind the app even when the URL names a superuser, as the
embedded PostgreSQL's does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import sql
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app import tenancy

__all__ = ["AppRoleBypassesRls", "Database", "sqlstate_of"]

CONNECT_TIMEOUT_SECONDS = 10
# Admission (app.admission) keeps every request that is served a free connection: waiting for one is a bug.
POOL_TIMEOUT_SECONDS = 10
IDLE_IN_TRANSACTION_MS = 60_000
# /health's own connection: it must answer while every pooled one is busy, and soon when the database does not.
HEALTH_TIMEOUT_SECONDS = 1
_ROLE_FLAGS = "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"


class AppRoleBypassesRls(RuntimeError):
    """The role a connection serves as would skip row-level security: the connection is not used."""


def _engine(url: str, *, pool_size: int, overflow: int | None = None, name: str = "iam-app") -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size if overflow is None else overflow,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": name,
            # a connection left in an open transaction (a request that never finished) is closed by the server
            "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
        },
    )


def _serve_as(engine: Engine, role: str) -> None:
    """Make every new connection of `engine` assume `role`, for the whole life of the connection."""

    def assume_role(dbapi_connection: Any, _record: Any) -> None:
        """SET ROLE on a fresh connection, then check the role cannot bypass row-level security."""
        with dbapi_connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            cursor.execute(_ROLE_FLAGS)
            bypasses = cursor.fetchone()
        # Committed, so that the pool's rollback on check-in cannot undo the SET ROLE.
        dbapi_connection.commit()
        if bypasses is None or bypasses[0]:
            # Fail closed: serving as a role that skips row-level security would silently drop the second wall.
            raise AppRoleBypassesRls(f"the app role {role!r} bypasses row-level security; refusing to serve")

    event.listen(engine, "connect", assume_role)


class Database:
    """The serving engine (as the app role) and its session factory, for one PostgreSQL database."""

    def __init__(self, url: str, *, app_role: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine: Engine = _engine(url, pool_size=pool_size)
        _serve_as(self.engine, app_role)
        self.capacity = 2 * pool_size  # the pool's connections and as many overflowing
        self._health: Engine = create_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=HEALTH_TIMEOUT_SECONDS,
            pool_pre_ping=False,
            connect_args={
                "connect_timeout": HEALTH_TIMEOUT_SECONDS + 1,  # libpq's least meaningful value is 2
                "application_name": "iam-app-health",
                "options": f"-c statement_timeout={HEALTH_TIMEOUT_SECONDS * 1000}",
            },
        )
        _serve_as(self._health, app_role)
        self._health_lock = threading.Lock()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        tenancy.install(self._sessions)
        self._owner_engine: Engine | None = None
        self._owner: sessionmaker[Session] | None = None
        self._owner_lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose open transaction is rolled back on close unless committed."""
        with self._sessions() as session:
            yield session

    def open_session(self) -> Session:
        """A session for the caller to close (which rolls back what was not committed); opening it touches nothing."""
        return self._sessions()

    @contextmanager
    def owner_session(self) -> Iterator[Session]:
        """A session as `DATABASE_URL`'s own role, without the app role: what a reporting job would use.

        Only fault switches use it, to bring back bugs in which a query escapes row-level security by
        running on the migration owner's connection. It escapes wherever that role bypasses row-level
        security (a superuser such as the embedded server's, or a BYPASSRLS role); a plain owner is bound
        by `FORCE ROW LEVEL SECURITY` like the app role.
        """
        with self._owner_lock:
            if self._owner is None:
                self._owner_engine = _engine(self.url, pool_size=2)
                self._owner = sessionmaker(self._owner_engine, expire_on_commit=False, autoflush=False)
            owner = self._owner
        with owner() as session:
            yield session

    def ping(self) -> bool:
        """Whether the database answers a trivial query within a second or so, on a connection of its own: never
        behind the requests being served. One ping at a time: another waits for it a second at most."""
        if not self._health_lock.acquire(timeout=HEALTH_TIMEOUT_SECONDS):
            return False
        try:
            with self._health.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, AppRoleBypassesRls):
            self._health.dispose()  # a broken connection is not kept for the next ping
            return False
        finally:
            self._health_lock.release()
        return True

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self._health.dispose()
        if self._owner_engine is not None:
            self._owner_engine.dispose()


def sqlstate_of(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind an exception (following its causes), if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None
