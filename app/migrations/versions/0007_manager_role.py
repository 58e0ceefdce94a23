"""The Manager role: runs the organisation's people (members, their roles, invites) and its work, without deleting.

A Manager holds what a Member does, and `members:read` and `members:manage`; never a deletion of contacts, deals
or notes. So a Manager may invite or add a Member or a Viewer, and never an Admin: a role may be handed out only by
someone holding every permission it grants (OWASP API5, see `app.services.Services.grantable`).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

ROLE = "Manager"
DESCRIPTION = "runs the organisation's people and its work, without deleting"
GRANTS = (
    "dashboard:view",
    "contacts:read",
    "contacts:write",
    "deals:read",
    "deals:write",
    "notes:read",
    "notes:write",
    "members:read",
    "members:manage",
    "roles:read",
)
# The namespace of revision 0001: seeded ids stay stable across deploys and revisions.
SEED_NAMESPACE = uuid.UUID("6f1c2b0e-4a4e-4f57-9a52-0d4b7b7e6a11")


def _seed_id(kind: str, name: str) -> uuid.UUID:
    return uuid.uuid5(SEED_NAMESPACE, f"{kind}:{name}")


def upgrade() -> None:
    """Seed the Manager role and its grants (unless the deploy seeds no roles at all)."""
    if context.config.attributes.get("skip_role_seed", False):
        return
    roles = sa.table(
        "governance_roles", sa.column("id", UUID), sa.column("name", sa.Text), sa.column("description", sa.Text)
    )
    grants = sa.table(
        "governance_role_permissions",
        sa.column("id", UUID),
        sa.column("role_id", UUID),
        sa.column("permission_id", UUID),
    )
    op.bulk_insert(roles, [{"id": _seed_id("role", ROLE), "name": ROLE, "description": DESCRIPTION}])
    op.bulk_insert(
        grants,
        [
            {
                "id": _seed_id("grant", f"{ROLE}/{permission}"),
                "role_id": _seed_id("role", ROLE),
                "permission_id": _seed_id("permission", permission),
            }
            for permission in GRANTS
        ],
    )


def downgrade() -> None:
    """Remove the Manager role; its grants and any member's hold of it go with it (ON DELETE CASCADE)."""
    op.execute(sa.text("DELETE FROM governance_roles WHERE id = :id").bindparams(id=_seed_id("role", ROLE)))
