"""Which organisation (and, during identity resolution, which user) a transaction acts for.

Row-level security reads three transaction-local settings: `app.current_org` (every org-scoped table),
`app.current_user` (a user's own memberships and roles, read before their organisation is known) and
`app.current_invite` (the digest of an invite token: the one invite its holder may read and accept).
All are set with `set_config(name, value, true)`, so they end with the transaction: a pooled connection
never carries one request's organisation into the next.

A request binds its organisation to its session once (`bind_org`); every transaction the session begins
afterwards is bound again before its first statement (`install`), so a handler that commits and reads on
cannot fall out of its organisation. The user setting is bound for one transaction only (`bind_user`):
the identity code needs it, nothing after it does.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

__all__ = [
    "CURRENT_INVITE",
    "CURRENT_ORG",
    "CURRENT_USER",
    "bind_invite",
    "bind_org",
    "bind_org_once",
    "bind_user",
    "bound_by_statement",
    "bound_org",
    "install",
]

CURRENT_ORG = "app.current_org"
CURRENT_USER = "app.current_user"
CURRENT_INVITE = "app.current_invite"
_ORG_KEY = "tenancy.org_id"


def _set(connection: Connection | Session, name: str, value: str) -> None:
    connection.execute(select(func.set_config(name, value, True)))


def bind_org(session: Session, org_id: uuid.UUID) -> None:
    """Make `org_id` the organisation of this database session, now (in an open transaction) and in every later one."""
    value = str(org_id)
    if session.info.get(_ORG_KEY) == value:
        return
    session.info[_ORG_KEY] = value
    _set(session, CURRENT_ORG, value)


def bound_by_statement(session: Session, org_id: uuid.UUID) -> None:
    """Record that a statement of the open transaction has already set `org_id` as its organisation (`app.auth.known`):
    `bind_org`, less the round trip."""
    session.info[_ORG_KEY] = str(org_id)


def bound_org(session: Session) -> uuid.UUID | None:
    """The organisation bound to this database session, if any."""
    value = session.info.get(_ORG_KEY)
    return uuid.UUID(value) if isinstance(value, str) else None


def bind_user(session: Session, user_id: uuid.UUID) -> None:
    """Let the current transaction read `user_id`'s own memberships and roles (identity resolution only)."""
    _set(session, CURRENT_USER, str(user_id))


def bind_org_once(session: Session, org_id: uuid.UUID) -> None:
    """Act for `org_id` in the current transaction only (a new organisation's first member is written so)."""
    _set(session, CURRENT_ORG, str(org_id))


def bind_invite(session: Session, token_digest: str) -> None:
    """Let the current transaction read and accept the one invite whose token has this digest, in any organisation."""
    _set(session, CURRENT_INVITE, token_digest)


def _rebind(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    value = session.info.get(_ORG_KEY)
    if isinstance(value, str):
        _set(connection, CURRENT_ORG, value)


def install(sessions: sessionmaker[Session]) -> None:
    """Bind the session's organisation at the start of every transaction of `sessions`."""
    event.listen(sessions, "after_begin", _rebind)
