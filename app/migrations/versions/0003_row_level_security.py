"""Row-level security, forced, on every org-scoped table: the second wall behind the org-scoped repository.

Each table gets `org_isolation`: a row is visible and writable only while the transaction acts for its
organisation (`app.current_org`, set per transaction with `set_config(..., true)`). With no organisation
set the setting reads as NULL, `org_id = NULL` is never true, and every query sees zero rows: a request
that forgot to bind fails closed, not open.

Identity resolution runs before the organisation is known ("which organisations is this user in?"), so
`org_membership` and `governance_user_roles` get a second, read-only policy, `own_rows`: the user named by
`app.current_user` may read their own rows, in any organisation, and nobody else's. It grants no writes.

The app serves as a role without BYPASSRLS that does not own these tables (see `app.migrations.roles`);
`FORCE` also binds the owner, so a connection that skips `SET ROLE` still cannot read across tenants
unless it is a superuser or has BYPASSRLS.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import context, op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"
CURRENT_USER = "NULLIF(current_setting('app.current_user', true), '')::uuid"
ORG_SCOPED = ("crm_contacts", "crm_deals", "crm_deal_notes", "org_membership", "governance_user_roles")
READABLE_BY_OWN_USER = ("org_membership", "governance_user_roles")


def upgrade() -> None:
    """Enable and force row-level security with the org policy (and the own-rows read policy)."""
    # The `no_rls` fault: the revision that should have switched the second wall on does nothing.
    if context.config.attributes.get("no_rls", False):
        return
    for table in ORG_SCOPED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_org_isolation ON {table} "
            f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
        )
    for table in READABLE_BY_OWN_USER:
        op.execute(f"CREATE POLICY {table}_own_rows ON {table} FOR SELECT USING (user_id = {CURRENT_USER})")


def downgrade() -> None:
    """Drop the policies and switch row-level security off."""
    for table in READABLE_BY_OWN_USER:
        op.execute(f"DROP POLICY IF EXISTS {table}_own_rows ON {table}")
    for table in ORG_SCOPED:
        op.execute(f"DROP POLICY IF EXISTS {table}_org_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
