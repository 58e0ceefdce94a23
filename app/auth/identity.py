"""Layer 2 of authentication: Clerk `sub` -> system user (uuid) -> active organisation (uuid).

A first login provisions what is missing in one transaction, and safely when requests race: every
insert is `INSERT ... ON CONFLICT DO NOTHING` against a unique constraint, so the loser of a race waits
for the winner's commit, inserts nothing, and reads the winner's rows. Exactly one user, one identity,
one Personal Workspace (or one organisation per Clerk org id) can ever exist.

Row-level security binds this code too: it reads the caller's own memberships through the `own_rows`
policy (`app.current_user`, set once the user is known), and writes a new organisation's first member
while the transaction acts for that organisation only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import tenancy
from app.auth.token import OrgClaim, SessionClaims
from app.models import CLERK, ExternalIdentity, Membership, Organisation, Role, User, UserRole

__all__ = [
    "ADMIN_ROLE",
    "FIRST_USER_FALLBACK_ROLE",
    "PERSONAL_WORKSPACE",
    "Identity",
    "NotAMember",
    "OrgRef",
    "ensure_user",
    "provision",
    "resolve_identity",
]

PERSONAL_WORKSPACE = "Personal Workspace"
ADMIN_ROLE = "Admin"
FIRST_USER_FALLBACK_ROLE = "Member"  # what the `first_user_not_admin` fault hands out instead


class NotAMember(Exception):
    """The token names an organisation the app knows, and the user is not one of its members."""


@dataclass(frozen=True)
class OrgRef:
    """The active organisation of a request."""

    id: uuid.UUID
    external_id: str | None
    name: str


@dataclass(frozen=True)
class Identity:
    """Who is calling, resolved to the app's own ids."""

    user_id: uuid.UUID
    external_id: str
    organisation: OrgRef


def resolve_identity(
    session: Session, claims: SessionClaims, *, first_user_role: str = ADMIN_ROLE, trust_org_claim: bool = False
) -> Identity:
    """Resolve (provisioning on a first login) and commit; raise NotAMember when the org is not the user's."""
    try:
        identity = provision(session, claims, first_user_role=first_user_role, trust_org_claim=trust_org_claim)
    except NotAMember:
        # Whatever was provisioned before the refusal (the user) is still a consistent whole: keep it.
        session.commit()
        raise
    session.commit()
    return identity


def provision(
    session: Session, claims: SessionClaims, *, first_user_role: str = ADMIN_ROLE, trust_org_claim: bool = False
) -> Identity:
    """Resolve the caller within the current transaction, creating what a first login needs; no commit.
    (`trust_org_claim` is the fault switch of the same name: the historical bug, on purpose.)"""
    user_id = ensure_user(session, claims.subject)
    tenancy.bind_user(session, user_id)
    if claims.org is not None:
        org, created = _claimed_organisation(session, claims.org)
    else:
        oldest = _oldest_membership(session, user_id)
        if oldest is not None:
            return Identity(user_id=user_id, external_id=claims.subject, organisation=oldest)
        org, created = _personal_workspace(session, user_id)
    if created:
        _add_first_member(session, org.id, user_id, first_user_role)
    elif not _is_member(session, org.id, user_id):
        if not trust_org_claim:
            raise NotAMember(str(org.id))
        _add_first_member(session, org.id, user_id, ADMIN_ROLE)  # the claim believed, membership and role made up
    return Identity(user_id=user_id, external_id=claims.subject, organisation=org)


def ensure_user(session: Session, external_id: str) -> uuid.UUID:
    """The system user of a Clerk user id, created (with its identity row) if this is the first sight of it."""
    found = _user_of(session, external_id)
    if found is not None:
        return found
    candidate = uuid.uuid4()
    savepoint = session.begin_nested()
    session.execute(insert(User).values(id=candidate))
    won = session.scalar(
        insert(ExternalIdentity)
        .values(provider=CLERK, external_id=external_id, user_id=candidate)
        .on_conflict_do_nothing(index_elements=[ExternalIdentity.provider, ExternalIdentity.external_id])
        .returning(ExternalIdentity.user_id)
    )
    if won is not None:
        savepoint.commit()
        return candidate
    # Another request created this user first (we waited for its commit): drop our candidate, use theirs.
    savepoint.rollback()
    winner = _user_of(session, external_id)
    if winner is None:  # the winner was deleted in between; a retry of the request will create it afresh
        raise RuntimeError("external identity vanished while provisioning")
    return winner


def _user_of(session: Session, external_id: str) -> uuid.UUID | None:
    return session.scalar(
        select(ExternalIdentity.user_id).where(
            ExternalIdentity.provider == CLERK, ExternalIdentity.external_id == external_id
        )
    )


def _claimed_organisation(session: Session, claim: OrgClaim) -> tuple[OrgRef, bool]:
    name = claim.slug or claim.external_id
    created_id = session.scalar(
        insert(Organisation)
        .values(id=uuid.uuid4(), external_id=claim.external_id, name=name, slug=claim.slug)
        .on_conflict_do_nothing(index_elements=[Organisation.external_id])
        .returning(Organisation.id)
    )
    if created_id is not None:
        return OrgRef(id=created_id, external_id=claim.external_id, name=name), True
    org = session.execute(
        select(Organisation.id, Organisation.external_id, Organisation.name).where(
            Organisation.external_id == claim.external_id
        )
    ).one()
    return OrgRef(id=org.id, external_id=org.external_id, name=org.name), False


def _personal_workspace(session: Session, user_id: uuid.UUID) -> tuple[OrgRef, bool]:
    created_id = session.scalar(
        insert(Organisation)
        .values(id=uuid.uuid4(), name=PERSONAL_WORKSPACE, personal_owner_id=user_id)
        .on_conflict_do_nothing(index_elements=[Organisation.personal_owner_id])
        .returning(Organisation.id)
    )
    if created_id is not None:
        return OrgRef(id=created_id, external_id=None, name=PERSONAL_WORKSPACE), True
    org = session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.personal_owner_id == user_id)
    ).one()
    return OrgRef(id=org.id, external_id=None, name=org.name), False


def _oldest_membership(session: Session, user_id: uuid.UUID) -> OrgRef | None:
    row = session.execute(
        select(Organisation.id, Organisation.external_id, Organisation.name)
        .join(Membership, Membership.org_id == Organisation.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Membership.id)
        .limit(1)
    ).one_or_none()
    return None if row is None else OrgRef(id=row.id, external_id=row.external_id, name=row.name)


def _is_member(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    found = session.scalar(select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user_id))
    return found is not None


def _add_first_member(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    # The organisation was created in this very transaction: acting for it here lets row-level security
    # accept its first membership and role, and nothing else.
    tenancy.bind_org_once(session, org_id)
    session.execute(
        insert(Membership)
        .values(id=uuid.uuid4(), org_id=org_id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=[Membership.org_id, Membership.user_id])
    )
    role_id = session.scalar(select(Role.id).where(Role.name == role))
    if role_id is None:  # no roles seeded: the member is created without one and is denied everything
        return
    session.execute(
        insert(UserRole)
        .values(id=uuid.uuid4(), user_id=user_id, org_id=org_id, role_id=role_id)
        .on_conflict_do_nothing(index_elements=[UserRole.user_id, UserRole.org_id, UserRole.role_id])
    )
