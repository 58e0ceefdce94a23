"""The schema as typed ORM classes; table names as in production (`org_organisation`, `governance_user_roles`, ...).

Every primary key is a PostgreSQL `uuid`. Clerk's ids (`user_...`, `org_...`) are TEXT columns of their own
and never stand in for a uuid. The unique constraints are what make a racing first login create exactly
one user and one organisation: the identity code inserts with `ON CONFLICT DO NOTHING` against them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    MetaData,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "CLERK",
    "Base",
    "Contact",
    "Deal",
    "ExternalIdentity",
    "Invite",
    "Membership",
    "Note",
    "OrgOwned",
    "Organisation",
    "Permission",
    "Role",
    "RolePermission",
    "SyncedMembership",
    "User",
    "UserRole",
    "WebhookDelivery",
]

CLERK = "clerk"
"""The identity provider name stored beside each Clerk user id."""

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (the migration creates them by these names)."""

    metadata = MetaData(naming_convention=NAMING)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _org_id() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("org_organisation.id", ondelete="CASCADE"), index=True)


class OrgOwned:
    """Mixin of every row that belongs to one organisation: the column the base repository scopes by."""

    id: Mapped[uuid.UUID]
    org_id: Mapped[uuid.UUID]


class User(Base):
    """A person known to the app (`sys_user`); their Clerk id lives in `sys_external_identity`."""

    __tablename__ = "sys_user"

    id: Mapped[uuid.UUID] = _uuid_pk()
    created_at: Mapped[datetime] = _created_at()


class ExternalIdentity(Base):
    """Clerk `sub` (TEXT) -> system user (uuid); one per provider id, and one Clerk identity per user.

    `deleted_at` set means the Clerk user was deleted: their sessions are refused and the id is never provisioned.
    """

    __tablename__ = "sys_external_identity"
    __table_args__ = (UniqueConstraint("provider", "external_id"), UniqueConstraint("provider", "user_id"))

    id: Mapped[uuid.UUID] = _uuid_pk()
    provider: Mapped[str] = mapped_column(Text, server_default=text(f"'{CLERK}'"))
    external_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("sys_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _created_at()
    # The tombstone of a Clerk user deleted at Clerk (`user.deleted`): set once, never cleared. The row stays, so
    # that the unique (provider, external_id) keeps a late first login from provisioning the id afresh.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Organisation(Base):
    """A tenant (`org_organisation`): a Clerk organisation (`external_id`) or a user's Personal Workspace."""

    __tablename__ = "org_organisation"

    id: Mapped[uuid.UUID] = _uuid_pk()
    external_id: Mapped[str | None] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    slug: Mapped[str | None] = mapped_column(Text)
    # Unique, so that two racing first requests of one user create one Personal Workspace, not two.
    personal_owner_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("sys_user.id", ondelete="SET NULL"), unique=True
    )
    created_at: Mapped[datetime] = _created_at()
    # Clerk's organisation sync: the `updated_at` (ms) of the Clerk organisation last applied, and its tombstone.
    clerk_updated_at: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Membership(OrgOwned, Base):
    """A user's membership of an organisation (`org_membership`); at most one per pair."""

    __tablename__ = "org_membership"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("org_organisation.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("sys_user.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = _created_at()
    # The `updated_at` (ms) of the Clerk membership last applied, once a webhook named it.
    clerk_updated_at: Mapped[int | None] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """A Clerk webhook delivery applied (`sync_webhook_deliveries`), by svix message id: a retry changes nothing."""

    __tablename__ = "sync_webhook_deliveries"

    svix_id: Mapped[str] = mapped_column(Text, primary_key=True)
    event_type: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SyncedMembership(Base):
    """A Clerk membership (`sync_memberships`): where it went, and its tombstone once deleted at Clerk.

    Global, since `organizationMembership.deleted` names the membership alone: the organisation must be found
    before the deletion can act for it. A tombstoned id is never applied again, whatever arrives late.
    """

    __tablename__ = "sync_memberships"

    clerk_id: Mapped[str] = mapped_column(Text, primary_key=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Role(Base):
    """A governance role (`governance_roles`): Admin, Manager, Member, Viewer, seeded by migration."""

    __tablename__ = "governance_roles"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(Text, unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")


class Permission(Base):
    """A governance permission (`governance_permissions`), named `resource:action`."""

    __tablename__ = "governance_permissions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(Text, unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")


class RolePermission(Base):
    """Which permissions a role grants (`governance_role_permissions`)."""

    __tablename__ = "governance_role_permissions"
    __table_args__ = (UniqueConstraint("role_id", "permission_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    role_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("governance_roles.id", ondelete="CASCADE")
    )
    permission_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("governance_permissions.id", ondelete="CASCADE")
    )


class UserRole(OrgOwned, Base):
    """A role a user holds in one organisation (`governance_user_roles`); only members hold roles."""

    __tablename__ = "governance_user_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "org_id", "role_id"),
        # Removing a membership removes the roles that came with it: no orphan grant survives.
        ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["org_membership.org_id", "org_membership.user_id"],
            ondelete="CASCADE",
            name="fk_governance_user_roles_membership",
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("sys_user.id", ondelete="CASCADE"))
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("org_organisation.id", ondelete="CASCADE"), index=True
    )
    role_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("governance_roles.id", ondelete="CASCADE")
    )


class Contact(OrgOwned, Base):
    """A CRM contact (`crm_contacts`), owned by one organisation."""

    __tablename__ = "crm_contacts"

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = _org_id()
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Deal(OrgOwned, Base):
    """A sales deal (`crm_deals`), owned by one organisation, optionally with one of its contacts."""

    __tablename__ = "crm_deals"
    # The target of the notes' (org_id, deal_id) key: a note can only belong to a deal of its own organisation.
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        CheckConstraint("amount >= 0", name="ck_crm_deals_amount_not_negative"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = _org_id()
    title: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # A plain key to the contact: PostgreSQL checks that the contact exists, not that it shares the deal's
    # organisation (foreign key checks see every row). The API checks the organisation before writing.
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("crm_contacts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Note(OrgOwned, Base):
    """A note on a deal (`crm_deal_notes`); `org_id` is the deal's, kept here so row-level security can scope it."""

    __tablename__ = "crm_deal_notes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "deal_id"],
            ["crm_deals.org_id", "crm_deals.id"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name="fk_crm_deal_notes_deal",
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = _org_id()
    deal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Invite(OrgOwned, Base):
    """An invitation by email into one organisation with one role (`org_invites`).

    Only the SHA-256 digest of the token is kept: the token itself is in the invite mail and nowhere else. An
    invite is pending until it is accepted (once), revoked, or past `expires_at`.
    """

    __tablename__ = "org_invites"

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = _org_id()
    email: Mapped[str] = mapped_column(Text)
    """The invited address, lower case: it must equal the accepting session's verified `email` claim."""
    role_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("governance_roles.id", ondelete="CASCADE")
    )
    token_digest: Mapped[str] = mapped_column(Text, unique=True)
    invited_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("sys_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("sys_user.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
