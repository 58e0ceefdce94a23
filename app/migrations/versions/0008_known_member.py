"""`app_known_member`: a known member's identity, membership, grants and row-level security context in one call.

Almost every request comes from someone who signed in before, and for them nothing is written: the four reads of
identity resolution (user, organisation, membership, roles) become one function call (see `app.auth.known`).
It is PL/pgSQL because PL/pgSQL keeps the plans of its statements for the life of the connection: psycopg
forgets its prepared statements at every rollback, which ends every request, so plain statements are planned
afresh each time, and planning this join costs more than running it.

In order, each statement reading what the one before it set:

1. `app.current_user` := the live (not tombstoned) system user of the Clerk id;
2. `app.current_org` := the claimed organisation (the oldest holding that Clerk id; with none claimed, the user's
   oldest membership), only if the user is a member of it, read through the `own_rows` policy: the transaction
   never acts for an organisation that is not the caller's;
3. the rows: the user, the organisation, and each role the user holds there with each permission it grants
   (a role granting nothing with a NULL permission; a member holding no role as one row of NULLs);
4. `app.current_user` cleared: from here on the transaction acts for its organisation alone.

No row means "not a known, live member": the caller rolls back and resolves the login step by step. The
function runs with the caller's rights (SECURITY INVOKER, the default), so row-level security binds every
statement in it as it binds the app's own; it grants nothing a caller could not already read.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

# The settings read as row-level security reads them (revision 0003): unset or '' is NULL, which matches nothing.
FUNCTION = """
CREATE FUNCTION app_known_member(p_provider text, p_subject text, p_org text)
RETURNS TABLE (user_id uuid, org_id uuid, org_external_id text, org_name text, role text, permission text)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('app.current_user', COALESCE((
        SELECT i.user_id::text FROM sys_external_identity i
        WHERE i.provider = p_provider AND i.external_id = p_subject AND i.deleted_at IS NULL
    ), ''), true);
    IF p_org IS NULL THEN
        PERFORM set_config('app.current_org', COALESCE((
            SELECT m.org_id::text FROM org_membership m
            WHERE m.user_id = NULLIF(current_setting('app.current_user', true), '')::uuid
            ORDER BY m.created_at, m.id LIMIT 1
        ), ''), true);
    ELSE
        PERFORM set_config('app.current_org', COALESCE((
            SELECT m.org_id::text FROM org_membership m
            WHERE m.user_id = NULLIF(current_setting('app.current_user', true), '')::uuid
              AND m.org_id = (
                SELECT o.id FROM org_organisation o WHERE o.external_id = p_org ORDER BY o.created_at, o.id LIMIT 1
            )
        ), ''), true);
    END IF;
    RETURN QUERY
        SELECT m.user_id, o.id, o.external_id, o.name, r.name, p.name
        FROM org_membership m
        JOIN org_organisation o ON o.id = m.org_id
        LEFT JOIN governance_user_roles ur ON ur.user_id = m.user_id AND ur.org_id = m.org_id
        LEFT JOIN governance_roles r ON r.id = ur.role_id
        LEFT JOIN governance_role_permissions rp ON rp.role_id = r.id
        LEFT JOIN governance_permissions p ON p.id = rp.permission_id
        WHERE m.user_id = NULLIF(current_setting('app.current_user', true), '')::uuid
          AND m.org_id = NULLIF(current_setting('app.current_org', true), '')::uuid
        ORDER BY r.name, p.name;
    PERFORM set_config('app.current_user', '', true);
END
$fn$
"""


def upgrade() -> None:
    """Create the function."""
    op.execute(FUNCTION)


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP FUNCTION IF EXISTS app_known_member(text, text, text)")
