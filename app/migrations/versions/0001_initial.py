"""Initial schema: tenancy, identity, governance (seeded) and the CRM contacts table.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import UUID

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# The governance seed as it stood at this revision (a later change of roles is a later revision).
PERMISSIONS = {
    "dashboard:view": "open the dashboard",
    "contacts:read": "list and read contacts",
    "contacts:write": "create and change contacts",
    "contacts:delete": "delete contacts",
    "members:read": "list the organisation's members",
    "members:manage": "add and remove members, change their roles",
    "roles:read": "list roles and their permissions",
}
ROLES = {
    "Admin": (
        "manages the organisation",
        [
            "dashboard:view",
            "contacts:read",
            "contacts:write",
            "contacts:delete",
            "members:read",
            "members:manage",
            "roles:read",
        ],
    ),
    "Member": ("works with contacts", ["dashboard:view", "contacts:read", "contacts:write", "roles:read"]),
    "Viewer": ("reads contacts", ["dashboard:view", "contacts:read", "roles:read"]),
}
# Stable ids, so that every deploy seeds the same rows.
SEED_NAMESPACE = uuid.UUID("6f1c2b0e-4a4e-4f57-9a52-0d4b7b7e6a11")


def _seed_id(kind: str, name: str) -> uuid.UUID:
    return uuid.uuid5(SEED_NAMESPACE, f"{kind}:{name}")


def _id() -> sa.Column[uuid.UUID]:
    return sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()"))


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _uuid_fk(name: str, target: str, *, ondelete: str = "CASCADE", nullable: bool = False) -> sa.Column[uuid.UUID]:
    return sa.Column(name, UUID(as_uuid=True), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    """Create every table and seed the governance roles (row-level security comes in 0003)."""
    # The `provision_race` fault: the constraints that make racing first logins safe were never created.
    racy = context.config.attributes.get("provision_race", False)
    op.create_table("sys_user", _id(), _created_at())
    op.create_table(
        "sys_external_identity",
        _id(),
        sa.Column("provider", sa.Text(), nullable=False, server_default=sa.text("'clerk'")),
        sa.Column("external_id", sa.Text(), nullable=False),
        _uuid_fk("user_id", "sys_user.id"),
        _created_at(),
        *([] if racy else [sa.UniqueConstraint("provider", "external_id")]),
        sa.UniqueConstraint("provider", "user_id"),
    )
    op.create_table(
        "org_organisation",
        _id(),
        sa.Column("external_id", sa.Text(), nullable=True, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=True),
        _uuid_fk("personal_owner_id", "sys_user.id", ondelete="SET NULL", nullable=True),
        _created_at(),
        *([] if racy else [sa.UniqueConstraint("personal_owner_id")]),
    )
    op.create_table(
        "org_membership",
        _id(),
        _uuid_fk("org_id", "org_organisation.id"),
        _uuid_fk("user_id", "sys_user.id"),
        _created_at(),
        sa.UniqueConstraint("org_id", "user_id"),
    )
    op.create_index("ix_org_membership_user_id", "org_membership", ["user_id"])
    op.create_index("ix_org_membership_org_id", "org_membership", ["org_id"])
    op.create_table(
        "governance_roles",
        _id(),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
    )
    op.create_table(
        "governance_permissions",
        _id(),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
    )
    op.create_table(
        "governance_role_permissions",
        _id(),
        _uuid_fk("role_id", "governance_roles.id"),
        _uuid_fk("permission_id", "governance_permissions.id"),
        sa.UniqueConstraint("role_id", "permission_id"),
    )
    op.create_table(
        "governance_user_roles",
        _id(),
        _uuid_fk("user_id", "sys_user.id"),
        _uuid_fk("org_id", "org_organisation.id"),
        _uuid_fk("role_id", "governance_roles.id"),
        sa.UniqueConstraint("user_id", "org_id", "role_id"),
        sa.ForeignKeyConstraint(
            ["org_id", "user_id"],
            ["org_membership.org_id", "org_membership.user_id"],
            ondelete="CASCADE",
            name="fk_governance_user_roles_membership",
        ),
    )
    op.create_index("ix_governance_user_roles_org_id", "governance_user_roles", ["org_id"])
    op.create_table(
        "crm_contacts",
        _id(),
        _uuid_fk("org_id", "org_organisation.id"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_crm_contacts_org_id", "crm_contacts", ["org_id"])
    if not context.config.attributes.get("skip_role_seed", False):
        _seed_governance()


def _seed_governance() -> None:
    permissions = sa.table(
        "governance_permissions", sa.column("id", UUID), sa.column("name", sa.Text), sa.column("description", sa.Text)
    )
    roles = sa.table(
        "governance_roles", sa.column("id", UUID), sa.column("name", sa.Text), sa.column("description", sa.Text)
    )
    grants = sa.table(
        "governance_role_permissions",
        sa.column("id", UUID),
        sa.column("role_id", UUID),
        sa.column("permission_id", UUID),
    )
    op.bulk_insert(
        permissions,
        [{"id": _seed_id("permission", name), "name": name, "description": d} for name, d in PERMISSIONS.items()],
    )
    op.bulk_insert(
        roles, [{"id": _seed_id("role", name), "name": name, "description": d} for name, (d, _) in ROLES.items()]
    )
    op.bulk_insert(
        grants,
        [
            {
                "id": _seed_id("grant", f"{role}/{permission}"),
                "role_id": _seed_id("role", role),
                "permission_id": _seed_id("permission", permission),
            }
            for role, (_, granted) in ROLES.items()
            for permission in granted
        ],
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    for table in (
        "crm_contacts",
        "governance_user_roles",
        "governance_role_permissions",
        "governance_permissions",
        "governance_roles",
        "org_membership",
        "org_organisation",
        "sys_external_identity",
        "sys_user",
    ):
        op.drop_table(table)
