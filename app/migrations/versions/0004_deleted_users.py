"""Deleted Clerk users: `sys_external_identity.deleted_at`, the tombstone a `user.deleted` webhook leaves.

A tombstoned identity keeps its row: the unique (provider, external_id) is what stops a late first login (a
session token still within its lifetime, or a webhook that overtook the first login) from provisioning the
deleted id afresh. The app role may update this one column and no other (`app.migrations.roles`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the nullable `deleted_at` to `sys_external_identity` (NULL: the Clerk user exists)."""
    op.add_column("sys_external_identity", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop `deleted_at`: every tombstone is forgotten."""
    op.drop_column("sys_external_identity", "deleted_at")
