"""Invites by email: their tokens, their state, and accepting one.

A token is 256 random bits (`secrets.token_urlsafe(32)`), mailed to the invited address and never stored: the table
keeps its SHA-256 digest, and a token is looked up by that digest. Accepting is one guarded statement: the invite is
marked accepted only if it is unused, not revoked, unexpired and addressed to the session's verified email, so
that of any number of racing accepts exactly one consumes it. The membership it grants is written in the same
transaction, while that transaction acts for the invite's organisation; if the user is a member already, the
whole of it is rolled back and the invite stays usable.

The invitee belongs to no organisation of the invite's yet, so row-level security lets them reach the invite by
its digest alone (`app.current_invite`, see revision 0006): holding the token is what gives access to it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, false, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import tenancy
from app.errors import ApiError
from app.models import Invite, Membership, Organisation, Role, UserRole

__all__ = [
    "TOKEN_BYTES",
    "AcceptGuards",
    "Accepted",
    "InviteStatus",
    "accept_invite",
    "new_token",
    "status_of",
    "token_digest",
]

TOKEN_BYTES = 32


class InviteStatus(StrEnum):
    """Where an invite stands."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AcceptGuards:
    """What accepting an invite checks: everything by default; each `False` is a fault switch."""

    unused: bool = True
    """Not accepted before (`invite_reusable` drops it)."""
    bound_to_email: bool = True
    """Addressed to the session's verified `email` claim (`invite_not_bound_to_email` drops it)."""
    unexpired: bool = True
    """Before `expires_at` (`invite_never_expires` drops it)."""


@dataclass(frozen=True)
class Accepted:
    """An accepted invite: the organisation the user joined, and the role they hold there."""

    org_id: uuid.UUID
    org_name: str
    role: str


def new_token() -> str:
    """A fresh invite token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) of a token: what the table stores and looks tokens up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def status_of(invite: Invite, *, now: datetime | None = None) -> InviteStatus:
    """An invite's state: accepted or revoked once it is, else expired past `expires_at`, else pending."""
    if invite.accepted_at is not None:
        return InviteStatus.ACCEPTED
    if invite.revoked_at is not None:
        return InviteStatus.REVOKED
    if invite.expires_at <= (now or datetime.now(UTC)):
        return InviteStatus.EXPIRED
    return InviteStatus.PENDING


def accept_invite(
    session: Session, token: str, *, user_id: uuid.UUID, email: str | None, guards: AcceptGuards
) -> Accepted:
    """Consume the invite `token` names and make `user_id` a member of its organisation with its role; commit.

    Raise ApiError with nothing changed when the invite is unknown (404), for another address (403), revoked or
    expired (410), used (409), or the user is a member of its organisation already (409).
    """
    digest = token_digest(token)
    tenancy.bind_invite(session, digest)
    conditions: list[ColumnElement[bool]] = [Invite.token_digest == digest, Invite.revoked_at.is_(None)]
    if guards.unused:
        conditions.append(Invite.accepted_at.is_(None))
    if guards.unexpired:
        conditions.append(Invite.expires_at > func.now())
    if guards.bound_to_email:
        conditions.append(Invite.email == email if email is not None else false())
    consumed = session.execute(
        update(Invite)
        .where(*conditions)
        .values(accepted_at=func.now(), accepted_by=user_id)
        .returning(Invite.org_id, Invite.role_id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if consumed is None:
        refusal = _why_not(session, digest, email, guards)
        session.rollback()
        raise refusal
    # The membership is written while this transaction acts for the invite's organisation, and for it alone.
    tenancy.bind_org_once(session, consumed.org_id)
    joined = session.scalar(
        insert(Membership)
        .values(id=uuid.uuid4(), org_id=consumed.org_id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=[Membership.org_id, Membership.user_id])
        .returning(Membership.id)
    )
    if joined is None:
        session.rollback()  # the invite is not spent on someone who is a member already
        raise ApiError(409, "conflict", reason="already_a_member")
    session.execute(
        insert(UserRole)
        .values(id=uuid.uuid4(), user_id=user_id, org_id=consumed.org_id, role_id=consumed.role_id)
        .on_conflict_do_nothing(index_elements=[UserRole.user_id, UserRole.org_id, UserRole.role_id])
    )
    org_name = session.scalar(select(Organisation.name).where(Organisation.id == consumed.org_id))
    role = session.scalar(select(Role.name).where(Role.id == consumed.role_id))
    session.commit()
    return Accepted(org_id=consumed.org_id, org_name=org_name or "", role=role or "")


def _why_not(session: Session, digest: str, email: str | None, guards: AcceptGuards) -> ApiError:
    """Why the guarded statement consumed nothing: the first refusal that applies, in the order a client can act on.

    Another address is told before the invite's state, so that a link forwarded to the wrong person says nothing
    about whether it was used.
    """
    row = session.execute(
        select(
            Invite.email,
            Invite.accepted_at.is_not(None).label("used"),
            Invite.revoked_at.is_not(None).label("revoked"),
            (Invite.expires_at <= func.now()).label("expired"),
        ).where(Invite.token_digest == digest)
    ).one_or_none()
    if row is None:
        return ApiError(404, "not_found", reason="invite_not_found")
    if guards.bound_to_email and row.email != email:
        return ApiError(403, "forbidden", reason="invite_for_another_address")
    if row.revoked:
        return ApiError(410, "gone", reason="invite_revoked")
    if row.used and guards.unused:
        return ApiError(409, "conflict", reason="invite_already_used")
    if row.expired and guards.unexpired:
        return ApiError(410, "gone", reason="invite_expired")
    # The invite changed between the two statements (a concurrent accept consumed it): it is used.
    return ApiError(409, "conflict", reason="invite_already_used")
