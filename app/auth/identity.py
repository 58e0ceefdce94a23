"""Layer 2 of authentication: Clerk `sub` -> system user (uuid) -> active organisation (uuid).

A first login provisions what is missing in one transaction, and safely when requests race: every
insert is `INSERT ... ON CONFLICT DO NOTHING` against a unique constraint, so the loser of a race waits
for the winner's commit, inserts nothing, and reads the winner's rows. Exactly one user, one identity,
one Personal Workspace (or one organisation per Clerk org id) can ever exist.

Row-level security binds this code too: it reads the caller's own memberships through the `own_rows`
policy (`app.current_user`, set once the user is known), and writes a new organisation's first member
while the transaction acts for that organisation only.

A Clerk user deleted at Clerk is tombstoned (`delete_user`), never removed: the identity row stays, marked,
so the same unique constraint that makes racing first logins safe makes resurrection impossible. The
tombstone is written whether or not the user ever signed in, since Clerk does not promise to deliver
`user.deleted` after the first login it follows. A first login and a deletion racing each other serialise on
that constraint as two logins do; a known user's login that adds a membership share-locks the identity row
first (`hold_live`), so a deletion either removes that membership or refuses the login.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg import errors as pg_errors
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import tenancy
from app.auth.token import OrgClaim, SessionClaims
from app.models import CLERK, ExternalIdentity, Membership, Organisation, Role, User, UserRole

__all__ = [
    "ADMIN_ROLE",
    "FIRST_USER_FALLBACK_ROLE",
    "HEALTHY",
    "PERSONAL_WORKSPACE",
    "DeletedUser",
    "Identity",
    "NotAMember",
    "OrgRef",
    "Provisioning",
    "UserDeleted",
    "database_breaks",
    "delete_user",
    "ensure_user",
    "hold_live",
    "is_deleted",
    "provision",
    "resolve_identity",
]

PERSONAL_WORKSPACE = "Personal Workspace"
# The `provision_race` bug's gap between finding no user and inserting one: in its day, the user's profile was
# fetched from Clerk's API there, a network round trip during which every racing request looks and finds nothing.
RACY_GAP_SECONDS = 0.2
ADMIN_ROLE = "Admin"
FIRST_USER_FALLBACK_ROLE = "Member"  # what the `first_user_not_admin` fault hands out instead


class NotAMember(Exception):
    """The token names an organisation the app knows, and the user is not one of its members."""


class UserDeleted(Exception):
    """The Clerk user was deleted at Clerk: nothing may sign in as them, nor provision them again."""


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


@dataclass(frozen=True)
class DeletedUser:
    """The outcome of a deletion: the tombstoned user and how many organisations they were taken out of."""

    user_id: uuid.UUID
    memberships_removed: int


def database_breaks() -> OperationalError:
    """The error of a database that goes away mid-transaction (SQLSTATE 57P01), as SQLAlchemy raises it: what
    the test-mode hook makes provisioning fail with."""
    lost = pg_errors.AdminShutdown("terminating connection due to administrator command")
    return OperationalError("INSERT INTO org_organisation ...", None, lost)


@dataclass(frozen=True)
class Provisioning:
    """How a first login provisions: the healthy way by default; each other value is a fault switch or the test hook.

    `first_user_role`, `trust_org_claim` and `accept_deleted` bring back `first_user_not_admin`,
    `org_claim_trusted_without_membership` and `deleted_user_accepted`; `commit_as_it_goes` and `racy` bring back
    `provision_not_transactional` and `provision_race`; `unconstrained_orgs` is the schema of
    `webhook_not_idempotent`, where nothing makes a Clerk organisation id unique. `fail_midway` breaks the
    database once the organisation is written and before its first member and role grant are (the test-mode
    hook): nothing of it may remain.
    """

    first_user_role: str = ADMIN_ROLE
    trust_org_claim: bool = False
    accept_deleted: bool = False
    commit_as_it_goes: bool = False
    racy: bool = False
    unconstrained_orgs: bool = False
    fail_midway: bool = False


HEALTHY = Provisioning()


def resolve_identity(session: Session, claims: SessionClaims, how: Provisioning = HEALTHY) -> Identity:
    """Resolve (provisioning on a first login) and commit; raise NotAMember when the org is not the user's,
    UserDeleted (nothing written) when the user was deleted at Clerk."""
    try:
        identity = provision(session, claims, how)
    except NotAMember:
        # Whatever was provisioned before the refusal (the user) is still a consistent whole: keep it.
        session.commit()
        raise
    session.commit()
    return identity


def provision(session: Session, claims: SessionClaims, how: Provisioning = HEALTHY) -> Identity:
    """Resolve the caller within the current transaction, creating what a first login needs; no commit (unless
    `how` is the `provision_not_transactional` fault, which commits each step)."""
    user_id = ensure_user(session, claims.subject, accept_deleted=how.accept_deleted, racy=how.racy)
    _step_done(session, user_id, how)
    if claims.org is not None:
        org, created = _claimed_organisation(session, claims.org, unconstrained=how.unconstrained_orgs)
    else:
        oldest = _oldest_membership(session, user_id)
        if oldest is not None:
            return Identity(user_id=user_id, external_id=claims.subject, organisation=oldest)
        org, created = _personal_workspace(session, user_id, racy=how.racy)
    _step_done(session, user_id, how)
    if how.fail_midway:
        raise database_breaks()
    if created:
        hold_live(session, claims.subject, accept_deleted=how.accept_deleted)
        _add_first_member(session, org.id, user_id, how.first_user_role)
    elif not _is_member(session, org.id, user_id):
        # A Clerk organisation its webhooks made before this user's membership arrived refuses them until it does
        # (Clerk delivers it within seconds): a session alone never makes anyone a member of a known organisation.
        if not how.trust_org_claim:
            raise NotAMember(str(org.id))
        hold_live(session, claims.subject, accept_deleted=how.accept_deleted)
        _add_first_member(session, org.id, user_id, ADMIN_ROLE)  # the claim believed, membership and role made up
    return Identity(user_id=user_id, external_id=claims.subject, organisation=org)


def _step_done(session: Session, user_id: uuid.UUID, how: Provisioning) -> None:
    """Between two steps of a first login: nothing, in one transaction; a commit, with `provision_not_transactional`."""
    if how.commit_as_it_goes:
        session.commit()  # the bug: what was written so far stays, whatever happens next
    tenancy.bind_user(session, user_id)  # the user's own rows are readable in this (or the new) transaction


def ensure_user(session: Session, external_id: str, *, accept_deleted: bool = False, racy: bool = False) -> uuid.UUID:
    """The system user of a Clerk user id, created (with its identity row) if this is the first sight of it;
    raise UserDeleted if the id was deleted at Clerk (unless `accept_deleted`, the fault)."""
    found = _identity_of(session, external_id)
    if found is not None:
        return _live(found, accept_deleted=accept_deleted)
    if racy:  # the `provision_race` bug: looked up, not found, inserted; nothing stops a racing request doing the same
        time.sleep(RACY_GAP_SECONDS)
        return _insert_identity(session, external_id)
    created = _create_identity(session, external_id, deleted=False)
    if created is not None:
        return created
    # Another request created this user first (we waited for its commit): use theirs.
    # The winner may be a `user.deleted` that overtook this first login: then its tombstone refuses us.
    winner = _identity_of(session, external_id)
    if winner is None:  # the winner was deleted in between; a retry of the request will create it afresh
        raise RuntimeError("external identity vanished while provisioning")
    return _live(winner, accept_deleted=accept_deleted)


def is_deleted(session: Session, external_id: str) -> bool:
    """Whether the Clerk user id carries a tombstone."""
    found = _identity_of(session, external_id)
    return found is not None and found.deleted_at is not None


def delete_user(session: Session, external_id: str, *, keep_memberships: bool = False) -> DeletedUser:
    """Tombstone a Clerk user id (known or not) and take the user out of every organisation; no commit.

    Idempotent: a second delivery finds the tombstone (its first time kept) and no membership left.
    `keep_memberships` is the `deleted_user_accepted` fault: the deletion is recorded and nothing acts on it.
    """
    user_id = _tombstone(session, external_id)
    removed = 0 if keep_memberships else _leave_every_organisation(session, user_id)
    return DeletedUser(user_id=user_id, memberships_removed=removed)


@dataclass(frozen=True)
class _Known:
    """A Clerk user id's identity row: its system user, and its tombstone if it has one."""

    user_id: uuid.UUID
    deleted_at: datetime | None


def _identity_of(session: Session, external_id: str) -> _Known | None:
    row = session.execute(
        select(ExternalIdentity.user_id, ExternalIdentity.deleted_at).where(
            ExternalIdentity.provider == CLERK, ExternalIdentity.external_id == external_id
        )
    ).one_or_none()
    return None if row is None else _Known(user_id=row.user_id, deleted_at=row.deleted_at)


def hold_live(session: Session, external_id: str, *, accept_deleted: bool) -> None:
    """Before a login adds a membership: share-lock the user's identity row until commit, and re-check its
    tombstone. A deletion (which updates that row) then either waits for this login and removes the membership
    it adds, or commits first and this login is refused; never a deleted user left as a member."""
    deleted_at = session.scalar(
        select(ExternalIdentity.deleted_at)
        .where(ExternalIdentity.provider == CLERK, ExternalIdentity.external_id == external_id)
        .with_for_update(read=True)
    )
    if deleted_at is not None and not accept_deleted:
        raise UserDeleted


def _live(found: _Known, *, accept_deleted: bool) -> uuid.UUID:
    if found.deleted_at is not None and not accept_deleted:
        raise UserDeleted
    return found.user_id


def _tombstone(session: Session, external_id: str) -> uuid.UUID:
    # Mark the identity if it exists (keeping the first deletion's time); else create it already marked, so that
    # a first login arriving after the deletion finds the tombstone. If a first login creates the identity
    # between the two statements, our insert waits for its commit and conflicts: mark theirs on the second pass.
    for _ in range(2):
        marked = session.scalar(
            update(ExternalIdentity)
            .where(ExternalIdentity.provider == CLERK, ExternalIdentity.external_id == external_id)
            .values(deleted_at=func.coalesce(ExternalIdentity.deleted_at, func.now()))
            .returning(ExternalIdentity.user_id)
            .execution_options(synchronize_session=False)
        )
        if marked is not None:
            return marked
        created = _create_identity(session, external_id, deleted=True)
        if created is not None:
            return created
    raise RuntimeError("external identity neither found nor created while tombstoning")


def _create_identity(session: Session, external_id: str, *, deleted: bool) -> uuid.UUID | None:
    """A new system user with its identity row (tombstoned already if `deleted`); None, with nothing left
    behind, when another transaction created the identity first (this insert waited for its commit)."""
    candidate = uuid.uuid4()
    savepoint = session.begin_nested()
    session.execute(insert(User).values(id=candidate))
    won = session.scalar(
        insert(ExternalIdentity)
        .values(provider=CLERK, external_id=external_id, user_id=candidate, deleted_at=func.now() if deleted else None)
        .on_conflict_do_nothing(index_elements=[ExternalIdentity.provider, ExternalIdentity.external_id])
        .returning(ExternalIdentity.user_id)
    )
    if won is None:
        savepoint.rollback()
        return None
    savepoint.commit()
    return candidate


def _insert_identity(session: Session, external_id: str) -> uuid.UUID:
    candidate = uuid.uuid4()
    session.execute(insert(User).values(id=candidate))
    session.execute(insert(ExternalIdentity).values(provider=CLERK, external_id=external_id, user_id=candidate))
    return candidate


def _leave_every_organisation(session: Session, user_id: uuid.UUID) -> int:
    # The user's memberships are read through `own_rows`; each is removed while acting for its organisation,
    # which is all row-level security lets a write reach. Their roles go first (the key would cascade them too).
    # An organisation left without an admin stays as it is: its other members keep their roles.
    tenancy.bind_user(session, user_id)
    org_ids = list(session.scalars(select(Membership.org_id).where(Membership.user_id == user_id)))
    for org_id in org_ids:
        tenancy.bind_org_once(session, org_id)
        session.execute(
            delete(UserRole)
            .where(UserRole.org_id == org_id, UserRole.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(Membership)
            .where(Membership.org_id == org_id, Membership.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
    return len(org_ids)


def _claimed_organisation(session: Session, claim: OrgClaim, *, unconstrained: bool = False) -> tuple[OrgRef, bool]:
    name = claim.slug or claim.external_id
    if unconstrained:  # the `webhook_not_idempotent` fault's schema: no unique Clerk id, so look, then insert
        found = session.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.external_id == claim.external_id)
            .order_by(Organisation.created_at, Organisation.id)
            .limit(1)
        ).one_or_none()
        if found is not None:
            return OrgRef(id=found.id, external_id=claim.external_id, name=found.name), False
        created = uuid.uuid4()
        session.execute(
            insert(Organisation).values(id=created, external_id=claim.external_id, name=name, slug=claim.slug)
        )
        return OrgRef(id=created, external_id=claim.external_id, name=name), True
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


def _personal_workspace(session: Session, user_id: uuid.UUID, *, racy: bool = False) -> tuple[OrgRef, bool]:
    if racy:  # the `provision_race` bug: check, then insert, without the constraint that makes it safe
        found = session.scalar(select(Organisation.id).where(Organisation.personal_owner_id == user_id).limit(1))
        if found is not None:
            return OrgRef(id=found, external_id=None, name=PERSONAL_WORKSPACE), False
        created = uuid.uuid4()
        session.execute(insert(Organisation).values(id=created, name=PERSONAL_WORKSPACE, personal_owner_id=user_id))
        return OrgRef(id=created, external_id=None, name=PERSONAL_WORKSPACE), True
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
