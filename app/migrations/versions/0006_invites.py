"""Invites by email: `org_invites`, org-scoped and behind row-level security like every business table.

An invite names an address, a role and its organisation. Only the SHA-256 digest of its token is stored: the token
travels in the invite mail alone, so a copy of the table accepts nothing. An invite is consumed once
(`accepted_at`), may be revoked (`revoked_at`), and lapses at `expires_at`.

Besides `org_isolation` (as in revision 0003), the invitee needs to find the one invite their token names before
they belong to its organisation. So, like `own_rows` of revision 0003, a narrow policy pair lets a transaction
that presents a token's digest (`app.current_invite`) read that one invite and mark it accepted, and nothing else:
no other row, no insert, no delete. Knowing the digest means holding the token, which is what an invite is for.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import UUID

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "org_invites"
CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"
CURRENT_INVITE = "NULLIF(current_setting('app.current_invite', true), '')"


def _timestamp(name: str, *, nullable: bool) -> sa.Column[datetime]:
    default = None if nullable else sa.func.now()
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def _uuid_fk(name: str, target: str, *, ondelete: str, nullable: bool) -> sa.Column[uuid.UUID]:
    return sa.Column(name, UUID(as_uuid=True), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    """Create `org_invites`; enable and force row-level security with the org policy and the token-holder pair."""
    op.create_table(
        TABLE,
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        _uuid_fk("org_id", "org_organisation.id", ondelete="CASCADE", nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        _uuid_fk("role_id", "governance_roles.id", ondelete="CASCADE", nullable=False),
        sa.Column("token_digest", sa.Text(), nullable=False, unique=True),
        _uuid_fk("invited_by", "sys_user.id", ondelete="CASCADE", nullable=False),
        _timestamp("created_at", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        _timestamp("accepted_at", nullable=True),
        _uuid_fk("accepted_by", "sys_user.id", ondelete="SET NULL", nullable=True),
        _timestamp("revoked_at", nullable=True),
    )
    op.create_index("ix_org_invites_org_id", TABLE, ["org_id"])
    # The `no_rls` fault: as in revision 0003, the second wall is never switched on.
    if context.config.attributes.get("no_rls", False):
        return
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {TABLE}_org_isolation ON {TABLE} "
        f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
    )
    op.execute(f"CREATE POLICY {TABLE}_token_holder ON {TABLE} FOR SELECT USING (token_digest = {CURRENT_INVITE})")
    op.execute(
        f"CREATE POLICY {TABLE}_token_holder_accepts ON {TABLE} FOR UPDATE "
        f"USING (token_digest = {CURRENT_INVITE}) WITH CHECK (token_digest = {CURRENT_INVITE})"
    )


def downgrade() -> None:
    """Drop `org_invites` (its policies go with it)."""
    op.drop_table(TABLE)
