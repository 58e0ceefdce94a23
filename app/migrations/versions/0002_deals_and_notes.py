"""Deals (optionally with a contact) and notes on deals, with their permissions seeded.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

PERMISSIONS = {
    "deals:read": "list and read deals",
    "deals:write": "create and change deals",
    "deals:delete": "delete deals",
    "notes:read": "list and read the notes on deals",
    "notes:write": "write and change notes on deals",
    "notes:delete": "delete notes on deals",
}
GRANTS = {
    "Admin": sorted(PERMISSIONS),
    "Member": ["deals:read", "deals:write", "notes:read", "notes:write"],
    "Viewer": ["deals:read", "notes:read"],
}
# The namespace of revision 0001: seeded ids stay stable across deploys and revisions.
SEED_NAMESPACE = uuid.UUID("6f1c2b0e-4a4e-4f57-9a52-0d4b7b7e6a11")


def _seed_id(kind: str, name: str) -> uuid.UUID:
    return uuid.uuid5(SEED_NAMESPACE, f"{kind}:{name}")


def _id() -> sa.Column[uuid.UUID]:
    return sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()"))


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _org_id() -> sa.Column[uuid.UUID]:
    return sa.Column(
        "org_id", UUID(as_uuid=True), sa.ForeignKey("org_organisation.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    """Create `crm_deals` and `crm_deal_notes`; seed the deal and note permissions into the three roles."""
    op.create_table(
        "crm_deals",
        _id(),
        _org_id(),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column(
            "contact_id",
            UUID(as_uuid=True),
            sa.ForeignKey("crm_contacts.id", ondelete="SET NULL"),
            nullable=True,
        ),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("org_id", "id"),
        sa.CheckConstraint("amount >= 0", name="ck_crm_deals_amount_not_negative"),
    )
    op.create_index("ix_crm_deals_org_id", "crm_deals", ["org_id"])
    op.create_index("ix_crm_deals_contact_id", "crm_deals", ["contact_id"])
    op.create_table(
        "crm_deal_notes",
        _id(),
        _org_id(),
        sa.Column("deal_id", UUID(as_uuid=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        # The note's organisation is its deal's: the pair is one key, so the two can never disagree.
        sa.ForeignKeyConstraint(
            ["org_id", "deal_id"],
            ["crm_deals.org_id", "crm_deals.id"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name="fk_crm_deal_notes_deal",
        ),
    )
    op.create_index("ix_crm_deal_notes_org_id", "crm_deal_notes", ["org_id"])
    op.create_index("ix_crm_deal_notes_deal_id", "crm_deal_notes", ["deal_id"])
    if not context.config.attributes.get("skip_role_seed", False):
        _seed_permissions()


def _seed_permissions() -> None:
    permissions = sa.table(
        "governance_permissions", sa.column("id", UUID), sa.column("name", sa.Text), sa.column("description", sa.Text)
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
        grants,
        [
            {
                "id": _seed_id("grant", f"{role}/{permission}"),
                "role_id": _seed_id("role", role),
                "permission_id": _seed_id("permission", permission),
            }
            for role, granted in GRANTS.items()
            for permission in granted
        ],
    )


def downgrade() -> None:
    """Drop the two tables and the permissions this revision seeded."""
    op.drop_table("crm_deal_notes")
    op.drop_table("crm_deals")
    names = ", ".join(f"'{name}'" for name in PERMISSIONS)
    op.execute(f"DELETE FROM governance_permissions WHERE name IN ({names})")  # noqa: S608 - constant names
