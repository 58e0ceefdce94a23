"""Clerk organisation sync: what makes Clerk's webhooks idempotent and order-proof.

- `sync_webhook_deliveries`: one row per svix message id, written in the transaction of the event's effect,
  so that a retried or replayed delivery finds it and changes nothing.
- `org_organisation.clerk_updated_at` and `org_membership.clerk_updated_at`: the `updated_at` (ms) of the Clerk
  object last applied; an older event never overwrites a newer one.
- `org_organisation.deleted_at`: the tombstone of a Clerk organisation deleted at Clerk; a late `updated` never
  revives it, and nobody signs in to it again.
- `sync_memberships`: Clerk's membership id (`orgmem_...`, which a `deleted` event carries alone) -> the
  organisation and user it joined, and its tombstone once deleted at Clerk, so that a late `created` or
  `updated` does not bring it back. Global: a deletion must find the organisation before it can act for it.

The `webhook_not_idempotent` fault: the unique constraint on a Clerk organisation id is replaced by a plain index.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import UUID

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the sync columns and tables."""
    op.add_column("org_organisation", sa.Column("clerk_updated_at", sa.BigInteger(), nullable=True))
    op.add_column("org_organisation", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("org_membership", sa.Column("clerk_updated_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "sync_webhook_deliveries",
        sa.Column("svix_id", sa.Text(), primary_key=True),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "sync_memberships",
        sa.Column("clerk_id", sa.Text(), primary_key=True),
        sa.Column("org_id", UUID(as_uuid=True), nullable=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    if context.config.attributes.get("webhook_not_idempotent", False):
        op.drop_constraint("org_organisation_external_id_key", "org_organisation", type_="unique")
        op.create_index("ix_org_organisation_external_id", "org_organisation", ["external_id"])


def downgrade() -> None:
    """Drop the sync columns and tables."""
    op.drop_table("sync_memberships")
    op.drop_table("sync_webhook_deliveries")
    op.drop_column("org_membership", "clerk_updated_at")
    op.drop_column("org_organisation", "deleted_at")
    op.drop_column("org_organisation", "clerk_updated_at")
