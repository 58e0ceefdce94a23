"""Clerk organisation sync: users, organisations and memberships as Clerk's webhooks report them.

Clerk delivers at least once, retries, and promises no order, so every event is applied so that applying it
twice, late, or before the event it follows changes nothing it should not:

- **once per delivery**: the delivery's svix id is recorded in the transaction of its effect
  (`sync_webhook_deliveries`); a retry or a concurrent replay waits for the first, finds the record, and is
  acknowledged as `duplicate`;
- **one row per Clerk id**: organisations are upserted on their Clerk id, memberships on (organisation, user);
- **newest wins**: an organisation or membership carries the `updated_at` (ms) of the Clerk object last applied,
  and an older one never overwrites it;
- **deleted stays deleted**: `organization.deleted` tombstones the organisation (and removes its memberships), and
  nothing that arrives later revives it; `organizationMembership.deleted` tombstones the membership's Clerk id
  (`sync_memberships`), so a late `created` or `updated` of it is ignored;
- **a membership before its organisation** is kept: its payload embeds the organisation, which is created from it.

Clerk's roles map to the app's by `role_for`: `org:admin` -> Admin, `org:member` -> Member, any other
`org:<name>` -> the app role of that name (`org:viewer` -> Viewer) if there is one, else no role (the member is
denied everything, and the log says why). The first member of a synced organisation is its Admin because Clerk
gives its creator `org:admin`, and a first login that arrives before any webhook is provisioned as Admin.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import tenancy
from app.auth.identity import UserDeleted, ensure_user, hold_live
from app.auth.token import plain_id
from app.models import Membership, Organisation, Role, SyncedMembership, UserRole, WebhookDelivery
from app.webhooks import ClerkEvent, Delivery, WebhookRefused, deleted_object

__all__ = ["SyncRules", "Synced", "apply_delivery", "role_for"]

log = logging.getLogger("app.sync")

_ROLES = {"org:admin": "Admin", "org:member": "Member"}
MAX_NAME = 256


class Synced(StrEnum):
    """What a delivery did."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # this svix id was applied before
    STALE = "stale"  # older than what the app holds, or about something deleted at Clerk: nothing changed
    IGNORED = "ignored"  # an event type the app does not act on


@dataclass(frozen=True)
class SyncRules:
    """How events are applied: the healthy way by default; each `False` is a fault switch."""

    once_per_delivery: bool = True  # False: `webhook_not_idempotent` (no record of svix ids, a plain insert)
    keep_early_memberships: bool = True  # False: `membership_before_org_dropped`
    newest_wins: bool = True  # False: `stale_update_applied` (and a late update revives a deleted organisation)


def _clerk_id(value: str) -> str:
    if not plain_id(value):
        raise ValueError("must be a Clerk id")
    return value


ClerkId = Annotated[str, AfterValidator(_clerk_id)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ClerkOrganisation(_Payload):
    """`organization.*` data (and the `organization` a membership embeds)."""

    id: ClerkId
    name: Name
    slug: Annotated[str, StringConstraints(max_length=MAX_NAME)] | None = None
    updated_at: int | None = None


class PublicUserData(_Payload):
    user_id: ClerkId


class ClerkMembership(_Payload):
    """`organizationMembership.created|updated` data."""

    id: ClerkId
    role: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
    organization: ClerkOrganisation
    public_user_data: PublicUserData
    updated_at: int | None = None


class ClerkUser(_Payload):
    """`user.created|updated` data (only the id is kept: the profile stays at Clerk)."""

    id: ClerkId


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], event: ClerkEvent) -> M:
    try:
        return model.model_validate(event.data)
    except ValidationError:
        raise WebhookRefused("malformed_payload") from None


def role_for(clerk_role: str) -> str | None:
    """The app role a Clerk organisation role maps to (see the module's table); None: no role of the app."""
    if clerk_role in _ROLES:
        return _ROLES[clerk_role]
    name = clerk_role.removeprefix("org:")
    return name.capitalize() if name and name != clerk_role else None


@dataclass(frozen=True)
class _Context:
    session: Session
    rules: SyncRules
    accept_deleted_users: bool  # the `deleted_user_accepted` fault
    delete_user: Callable[[Session, str], object]


def apply_delivery(
    session: Session,
    delivery: Delivery,
    rules: SyncRules,
    *,
    delete_user: Callable[[Session, str], object],
    accept_deleted_users: bool = False,
) -> Synced:
    """Apply one verified delivery within the session's transaction (the caller commits); raise WebhookRefused
    (`malformed_payload`) when its data is not what its type says."""
    if rules.once_per_delivery and not _first_delivery(session, delivery):
        return Synced.DUPLICATE
    handler = _HANDLERS.get(delivery.event.type)
    if handler is None:
        return Synced.IGNORED
    return handler(_Context(session, rules, accept_deleted_users, delete_user), delivery.event)


def _first_delivery(session: Session, delivery: Delivery) -> bool:
    # A concurrent replay of the same id waits here for the first one's commit, then conflicts.
    recorded = session.scalar(
        insert(WebhookDelivery)
        .values(svix_id=delivery.message_id, event_type=delivery.event.type)
        .on_conflict_do_nothing(index_elements=[WebhookDelivery.svix_id])
        .returning(WebhookDelivery.svix_id)
    )
    return recorded is not None


# --- users ------------------------------------------------------------------------------------------------


def _user_upserted(ctx: _Context, event: ClerkEvent) -> Synced:
    user = _parse(ClerkUser, event)
    try:
        ensure_user(ctx.session, user.id, accept_deleted=ctx.accept_deleted_users)
    except UserDeleted:
        return Synced.STALE
    return Synced.PROCESSED


def _user_deleted(ctx: _Context, event: ClerkEvent) -> Synced:
    ctx.delete_user(ctx.session, deleted_object(event).id)
    return Synced.PROCESSED


# --- organisations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Org:
    id: uuid.UUID
    deleted: bool
    applied: bool  # this event's data was written


def _find_org(session: Session, external_id: str) -> tuple[uuid.UUID, bool] | None:
    row = session.execute(
        select(Organisation.id, Organisation.deleted_at)
        .where(Organisation.external_id == external_id)
        .order_by(Organisation.created_at, Organisation.id)
        .limit(1)
    ).one_or_none()
    return None if row is None else (row.id, row.deleted_at is not None)


def _upsert_org(ctx: _Context, org: ClerkOrganisation, *, creating: bool = False) -> _Org:
    values = {"name": org.name, "slug": org.slug, "clerk_updated_at": org.updated_at}
    if not ctx.rules.once_per_delivery:
        # The `webhook_not_idempotent` bug: `organization.created` inserts, every time it is delivered; anything
        # else updates whatever rows carry the id, or inserts one when none does.
        found = None if creating else _find_org(ctx.session, org.id)
        if found is None:
            created = uuid.uuid4()
            ctx.session.execute(insert(Organisation).values(id=created, external_id=org.id, **values))
            return _Org(created, deleted=False, applied=True)
        ctx.session.execute(
            update(Organisation)
            .where(Organisation.external_id == org.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _Org(found[0], deleted=found[1], applied=True)
    statement = insert(Organisation).values(id=uuid.uuid4(), external_id=org.id, **values)
    if ctx.rules.newest_wins:
        newer = Organisation.deleted_at.is_(None) & (
            Organisation.clerk_updated_at.is_(None)
            | (Organisation.clerk_updated_at < statement.excluded.clerk_updated_at)
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Organisation.external_id],
            set_={name: statement.excluded[name] for name in values},
            where=newer,
        )
    else:
        # The `stale_update_applied` bug: every update is written as it comes, its tombstone cleared with it.
        statement = statement.on_conflict_do_update(
            index_elements=[Organisation.external_id],
            set_={**{name: statement.excluded[name] for name in values}, "deleted_at": None},
        )
    written = ctx.session.scalar(statement.returning(Organisation.id))
    if written is not None:
        return _Org(written, deleted=False, applied=True)
    found = _find_org(ctx.session, org.id)
    assert found is not None  # the conflict was with it
    return _Org(found[0], deleted=found[1], applied=False)


def _org_upserted(ctx: _Context, event: ClerkEvent) -> Synced:
    org = _upsert_org(ctx, _parse(ClerkOrganisation, event), creating=event.type == "organization.created")
    return Synced.PROCESSED if org.applied else Synced.STALE


def _org_deleted(ctx: _Context, event: ClerkEvent) -> Synced:
    external_id = deleted_object(event).id
    marked = list(
        ctx.session.scalars(
            update(Organisation)
            .where(Organisation.external_id == external_id)
            .values(deleted_at=func.coalesce(Organisation.deleted_at, func.now()))
            .returning(Organisation.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not marked:  # deleted before the app ever heard of it: a tombstone, so that nothing creates it later
        tombstone = insert(Organisation).values(
            id=uuid.uuid4(), external_id=external_id, name=external_id, deleted_at=func.now()
        )
        if ctx.rules.once_per_delivery:
            tombstone = tombstone.on_conflict_do_update(
                index_elements=[Organisation.external_id],
                set_={"deleted_at": func.coalesce(Organisation.deleted_at, func.now())},
            )
        marked = list(ctx.session.scalars(tombstone.returning(Organisation.id)))
    for org_id in marked:
        _empty(ctx.session, org_id)
    return Synced.PROCESSED


def _empty(session: Session, org_id: uuid.UUID) -> None:
    """Take every member out of a deleted organisation (its records stay, out of everyone's reach)."""
    tenancy.bind_org_once(session, org_id)
    session.execute(delete(UserRole).where(UserRole.org_id == org_id).execution_options(synchronize_session=False))
    session.execute(delete(Membership).where(Membership.org_id == org_id).execution_options(synchronize_session=False))


# --- memberships ------------------------------------------------------------------------------------------


def _membership_upserted(ctx: _Context, event: ClerkEvent) -> Synced:
    member = _parse(ClerkMembership, event)
    session = ctx.session
    # Claim the membership's Clerk id first: a concurrent deletion of it either waits for this event or has
    # tombstoned it already (then nothing is applied).
    tombstoned = session.execute(
        insert(SyncedMembership)
        .values(clerk_id=member.id)
        .on_conflict_do_update(  # a no-op update: it locks the row until this transaction ends
            index_elements=[SyncedMembership.clerk_id], set_={"deleted_at": SyncedMembership.deleted_at}
        )
        .returning(SyncedMembership.deleted_at)
    ).scalar_one()
    if tombstoned is not None:
        return Synced.STALE
    if not ctx.rules.keep_early_memberships and _find_org(session, member.organization.id) is None:
        # The `membership_before_org_dropped` bug: acknowledged (so never retried) and dropped.
        log.info("webhook membership dropped: organisation %s not known yet", member.organization.id)
        return Synced.IGNORED
    # The user before the organisation, in the order a first login takes them: a login racing this event waits
    # for it (or it for the login) instead of each holding what the other needs.
    try:
        user_id = ensure_user(session, member.public_user_data.user_id, accept_deleted=ctx.accept_deleted_users)
        # As a first login does: share-lock the user's identity until commit, so that a `user.deleted` racing this
        # event either waits and removes the membership it adds, or has tombstoned the user already.
        hold_live(session, member.public_user_data.user_id, accept_deleted=ctx.accept_deleted_users)
    except UserDeleted:
        return Synced.STALE
    org = _upsert_org(ctx, member.organization)
    if org.deleted:
        return Synced.STALE
    session.execute(
        update(SyncedMembership)
        .where(SyncedMembership.clerk_id == member.id)
        .values(org_id=org.id, user_id=user_id)
        .execution_options(synchronize_session=False)
    )
    tenancy.bind_org_once(session, org.id)
    statement = insert(Membership).values(
        id=uuid.uuid4(), org_id=org.id, user_id=user_id, clerk_updated_at=member.updated_at
    )
    newer = None
    if ctx.rules.newest_wins:
        newer = Membership.clerk_updated_at.is_(None) | (
            Membership.clerk_updated_at < statement.excluded.clerk_updated_at
        )
    applied = session.scalar(
        statement.on_conflict_do_update(
            index_elements=[Membership.org_id, Membership.user_id],
            set_={"clerk_updated_at": statement.excluded.clerk_updated_at},
            where=newer,
        ).returning(Membership.id)
    )
    if applied is None:
        return Synced.STALE
    _grant(session, org.id, user_id, member.role)
    return Synced.PROCESSED


def _grant(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, clerk_role: str) -> None:
    """The member holds exactly the app role Clerk's role maps to (or none)."""
    session.execute(
        delete(UserRole)
        .where(UserRole.org_id == org_id, UserRole.user_id == user_id)
        .execution_options(synchronize_session=False)
    )
    name = role_for(clerk_role)
    role_id = session.scalar(select(Role.id).where(Role.name == name)) if name else None
    if role_id is None:
        log.info("webhook membership role %r maps to no role of the app: the member holds none", clerk_role[:100])
        return
    session.execute(insert(UserRole).values(id=uuid.uuid4(), user_id=user_id, org_id=org_id, role_id=role_id))


def _membership_deleted(ctx: _Context, event: ClerkEvent) -> Synced:
    clerk_id = deleted_object(event).id
    session = ctx.session
    row = session.execute(
        insert(SyncedMembership)
        .values(clerk_id=clerk_id, deleted_at=func.now())
        .on_conflict_do_update(
            index_elements=[SyncedMembership.clerk_id],
            set_={"deleted_at": func.coalesce(SyncedMembership.deleted_at, func.now())},
        )
        .returning(SyncedMembership.org_id, SyncedMembership.user_id)
    ).one()
    # A late deletion of a membership the user has since been given again (under another Clerk id) removes nothing.
    again = session.scalar(
        select(SyncedMembership.clerk_id)
        .where(
            SyncedMembership.org_id == row.org_id,
            SyncedMembership.user_id == row.user_id,
            SyncedMembership.clerk_id != clerk_id,
            SyncedMembership.deleted_at.is_(None),
        )
        .limit(1)
    )
    if row.org_id is not None and row.user_id is not None and again is None:
        tenancy.bind_org_once(session, row.org_id)
        for model in (UserRole, Membership):
            session.execute(
                delete(model)
                .where(model.org_id == row.org_id, model.user_id == row.user_id)
                .execution_options(synchronize_session=False)
            )
    return Synced.PROCESSED


_HANDLERS: dict[str, Callable[[_Context, ClerkEvent], Synced]] = {
    "user.created": _user_upserted,
    "user.updated": _user_upserted,
    "user.deleted": _user_deleted,
    "organization.created": _org_upserted,
    "organization.updated": _org_upserted,
    "organization.deleted": _org_deleted,
    "organizationMembership.created": _membership_upserted,
    "organizationMembership.updated": _membership_upserted,
    "organizationMembership.deleted": _membership_deleted,
}
