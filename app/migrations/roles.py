"""The role the app serves as: created if missing, and granted exactly the privileges below, on every migrate.

Why a role of its own: row-level security does not apply to superusers nor to BYPASSRLS roles, and the
embedded PostgreSQL (like many managed servers) hands out a superuser URL. So the app keeps one
`DATABASE_URL` (the owner, which migrates) and drops to this role with `SET ROLE` on every connection it
serves from. The role cannot log in (NOLOGIN: no second password to manage), is no superuser, does not
bypass row-level security, owns nothing, and may only read and write rows, table by table as listed here.

The grants are re-asserted on every run (they are idempotent), after the revisions, under the migration
lock: a table added by a later revision cannot be forgotten, and a test checks every table is listed.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["APP_PRIVILEGES", "AppRoleRefused", "ensure_app_role"]

APP_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # Global tables: identity and tenancy are provisioned on a first login. The one change ever made is the
    # tombstone of a deleted Clerk user; the column grant keeps `user_id` (which user a Clerk id signs in as) fixed.
    "sys_user": ("SELECT", "INSERT"),
    "sys_external_identity": ("SELECT", "INSERT", "UPDATE (deleted_at)"),
    # Clerk's organisation sync renames an organisation and tombstones it; nothing else of it changes.
    "org_organisation": (
        "SELECT",
        "INSERT",
        "UPDATE (name)",
        "UPDATE (slug)",
        "UPDATE (clerk_updated_at)",
        "UPDATE (deleted_at)",
    ),
    # The governance catalogue is seeded by migration and only read at run time.
    "governance_roles": ("SELECT",),
    "governance_permissions": ("SELECT",),
    "governance_role_permissions": ("SELECT",),
    # Org-scoped tables, behind row-level security.
    "org_membership": (
        "SELECT",
        "INSERT",
        "DELETE",
        "UPDATE (clerk_updated_at)",
    ),
    "governance_user_roles": ("SELECT", "INSERT", "DELETE"),
    "crm_contacts": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "crm_deals": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "crm_deal_notes": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    # Clerk's webhooks: each delivery's svix id, and where each Clerk membership went (or its tombstone).
    "sync_webhook_deliveries": ("SELECT", "INSERT"),
    "sync_memberships": ("SELECT", "INSERT", "UPDATE (org_id)", "UPDATE (user_id)", "UPDATE (deleted_at)"),
    # Invites: created and read by the organisation, consumed or revoked by stamping one column; the address, role,
    # organisation and token digest of an invite never change.
    "org_invites": ("SELECT", "INSERT", "UPDATE (accepted_at)", "UPDATE (accepted_by)", "UPDATE (revoked_at)"),
    # alembic_version: nothing.
}

# Roles are shared by every database of a server, so two databases migrating at once may both try to
# create it: the loser of that race finds it made and carries on.
_CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$
"""

# The migrating role must be able to SET ROLE to the app role; a superuser always can, and granting it
# anyway would write to the server-wide catalogue on every run.
_GRANT_MEMBERSHIP = """
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, '{role}', 'SET') THEN
        GRANT {role} TO CURRENT_USER;
    END IF;
END
$$
"""


class AppRoleRefused(RuntimeError):
    """The configured app role would bypass row-level security; the migration refuses to hand it out."""


def ensure_app_role(connection: Connection, role: str) -> None:
    """Create `role` if missing, make the migrating role able to assume it, and grant it `APP_PRIVILEGES`."""
    # `role` is a validated plain identifier (see app.config), so it is spliced, not bound: DDL takes no
    # bind parameters.
    connection.execute(text(_CREATE_ROLE.format(role=role)))
    flags = connection.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).one()
    if flags.rolsuper or flags.rolbypassrls:
        raise AppRoleRefused(
            f"the app role {role!r} is a superuser or has BYPASSRLS; row-level security would not bind it"
        )
    connection.execute(text(_GRANT_MEMBERSHIP.format(role=role)))
    connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    for table, privileges in APP_PRIVILEGES.items():
        connection.execute(text(f"REVOKE ALL ON {table} FROM {role}"))
        connection.execute(text(f"GRANT {', '.join(privileges)} ON {table} TO {role}"))
