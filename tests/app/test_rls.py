"""Row-level security, the second wall: the schema as the harness's C2 check sees it, and the app role's view.

These tests talk to PostgreSQL directly, as the app role (`SET ROLE iam_app` on the test's own connection),
to prove what the policies do whatever the repository asks.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import DEFAULT_APP_ROLE, Settings
from app.db import Database
from app.main import create_app
from app.migrations import upgrade
from app.migrations.roles import APP_PRIVILEGES, AppRoleRefused
from app.models import Base
from tests.app.support import (
    ADMIN_EMAIL,
    ISSUER,
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    add_member,
    create_contact,
    create_deal,
    create_note,
    public_pem,
    sign_in,
)

ORG_SCOPED = {
    "crm_contacts",
    "crm_deals",
    "crm_deal_notes",
    "org_membership",
    "governance_user_roles",
    "org_invites",
}
GLOBAL = {
    "org_organisation",
    "sys_user",
    "sys_external_identity",
    "governance_roles",
    "governance_permissions",
    "governance_role_permissions",
    "sync_webhook_deliveries",
    "sync_memberships",
    "alembic_version",
}


@dataclass(frozen=True)
class World:
    """Two organisations, each with a member and a contact, a deal and a note."""

    org1: Account
    org2: Account


@pytest.fixture
def world(client: TestClient, minter: Minter, shared_database_url: str) -> World:
    accounts = []
    for slug in ("rls-one", "rls-two"):
        admin = sign_in(client, minter, org=ActiveOrg(slug=slug))
        add_member(client, admin, minter, roles=["Viewer"])
        deal = create_deal(client, admin, contact_id=create_contact(client, admin)["id"])
        create_note(client, admin, deal["id"])
        _pending_invite(shared_database_url, admin)
        accounts.append(admin)
    return World(*accounts)


def _pending_invite(database_url: str, admin: Account) -> None:
    """An invite into the admin's organisation, written as the app would (acting for that organisation)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT set_config('app.current_org', %s, true)", (admin.org_id,))
        conn.execute(
            "INSERT INTO org_invites (org_id, email, role_id, token_digest, invited_by, expires_at) "
            "SELECT %s, 'rls@example.org', id, %s, %s, now() + interval '1 day' FROM governance_roles "
            "WHERE name = 'Viewer'",
            (admin.org_id, secrets.token_hex(32), admin.user_id),
        )


@pytest.fixture
def as_app_role(shared_database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the shared database that has assumed the app role, as the app's connections do."""
    with psycopg.connect(shared_database_url) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(DEFAULT_APP_ROLE)))
        conn.commit()
        yield conn


def _org_ids(conn: psycopg.Connection[tuple[object, ...]], table: str) -> set[str]:
    return {str(row[0]) for row in conn.execute(sql.SQL("SELECT org_id FROM {}").format(sql.Identifier(table)))}


def test_every_table_is_global_or_org_scoped_with_a_key_to_its_organisation(
    client: TestClient, shared_database_url: str
) -> None:
    with psycopg.connect(shared_database_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        with_org = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'org_id' AND is_nullable = 'NO'"
            )
        }
        keyed = {
            row[0]
            for row in conn.execute(
                """
                SELECT c.conrelid::regclass::text FROM pg_constraint c
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
                WHERE c.contype = 'f' AND c.confrelid = 'org_organisation'::regclass
                  AND a.attname = 'org_id' AND array_length(c.conkey, 1) = 1
                """
            )
        }
    assert tables == ORG_SCOPED | GLOBAL
    assert with_org == ORG_SCOPED and keyed == ORG_SCOPED


def test_row_level_security_is_enabled_and_forced_on_every_org_scoped_table(
    client: TestClient, shared_database_url: str
) -> None:
    with psycopg.connect(shared_database_url) as conn:
        flags = {
            row[0]: (row[1], row[2])
            for row in conn.execute(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            )
        }
        policies = {
            (row[0], row[1], row[2])
            for row in conn.execute("SELECT tablename, policyname, cmd FROM pg_policies WHERE schemaname = 'public'")
        }
    assert {table for table, on in flags.items() if on == (True, True)} == ORG_SCOPED
    assert all(flags[table] == (False, False) for table in GLOBAL)
    assert policies == {(table, f"{table}_org_isolation", "ALL") for table in ORG_SCOPED} | {
        ("org_membership", "org_membership_own_rows", "SELECT"),
        ("governance_user_roles", "governance_user_roles_own_rows", "SELECT"),
        ("org_invites", "org_invites_token_holder", "SELECT"),
        ("org_invites", "org_invites_token_holder_accepts", "UPDATE"),
    }


def test_the_app_role_cannot_log_in_bypass_or_own(client: TestClient, shared_database_url: str) -> None:
    with psycopg.connect(shared_database_url) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
            (DEFAULT_APP_ROLE,),
        ).fetchone()
        owned = conn.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", (DEFAULT_APP_ROLE,)).fetchone()
        privileges = {
            (row[0], row[1])
            for row in conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_schema = 'public'",
                (DEFAULT_APP_ROLE,),
            )
        }
        # Column grants, less what the table grants imply for every column.
        columns = {
            (row[0], f"{row[1]} ({row[2]})")
            for row in conn.execute(
                "SELECT table_name, privilege_type, column_name FROM information_schema.column_privileges "
                "WHERE grantee = %s AND table_schema = 'public'",
                (DEFAULT_APP_ROLE,),
            )
            if (row[0], row[1]) not in privileges
        }
    assert role == (False, False, False, False, False)
    assert owned == (0,)
    assert privileges | columns == {
        (table, privilege) for table, granted in APP_PRIVILEGES.items() for privilege in granted
    }
    # The tombstones, Clerk's renames and membership ids, and no other change.
    assert columns == {
        ("sys_external_identity", "UPDATE (deleted_at)"),
        *(("org_organisation", f"UPDATE ({c})") for c in ("name", "slug", "clerk_updated_at", "deleted_at")),
        ("org_membership", "UPDATE (clerk_updated_at)"),
        *(("sync_memberships", f"UPDATE ({c})") for c in ("org_id", "user_id", "deleted_at")),
        *(("org_invites", f"UPDATE ({c})") for c in ("accepted_at", "accepted_by", "revoked_at")),
    }


def test_every_table_of_the_schema_has_its_grants_listed() -> None:
    assert set(Base.metadata.tables) == set(APP_PRIVILEGES)


def test_the_app_serves_as_the_app_role(client: TestClient) -> None:
    database = client.app.state.services.database  # type: ignore[attr-defined]
    assert isinstance(database, Database)
    with database.session() as session:
        assert session.scalar(text("SELECT current_user")) == DEFAULT_APP_ROLE
        assert session.scalar(text("SELECT current_setting('app.current_org', true)")) in (None, "")


def test_with_no_organisation_set_the_app_role_reads_zero_rows(
    world: World, as_app_role: psycopg.Connection[tuple[object, ...]], shared_database_url: str
) -> None:
    with psycopg.connect(shared_database_url) as owner:
        for table in sorted(ORG_SCOPED):
            assert _org_ids(owner, table) >= {world.org1.org_id, world.org2.org_id}, table
    for table in sorted(ORG_SCOPED):
        count = as_app_role.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        assert count == (0,), table


def test_with_an_organisation_set_the_app_role_reads_only_that_organisation(
    world: World, as_app_role: psycopg.Connection[tuple[object, ...]]
) -> None:
    as_app_role.execute("SELECT set_config('app.current_org', %s, true)", (world.org1.org_id,))
    for table in sorted(ORG_SCOPED):
        assert _org_ids(as_app_role, table) == {world.org1.org_id}, table
    as_app_role.rollback()  # the setting was transaction-local: gone with the transaction
    assert as_app_role.execute("SELECT count(*) FROM crm_contacts").fetchone() == (0,)


def test_the_app_role_cannot_write_into_another_organisation(
    world: World, as_app_role: psycopg.Connection[tuple[object, ...]]
) -> None:
    as_app_role.execute("SELECT set_config('app.current_org', %s, true)", (world.org1.org_id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app_role.execute("INSERT INTO crm_contacts (org_id, name) VALUES (%s, 'smuggled')", (world.org2.org_id,))
    as_app_role.rollback()
    as_app_role.execute("SELECT set_config('app.current_org', %s, true)", (world.org1.org_id,))
    moved = as_app_role.execute("UPDATE crm_contacts SET name = 'renamed' WHERE org_id = %s", (world.org2.org_id,))
    assert moved.rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app_role.execute("UPDATE crm_contacts SET org_id = %s", (world.org2.org_id,))
    as_app_role.rollback()


def test_a_user_alone_reads_only_their_own_memberships_and_roles(
    world: World, as_app_role: psycopg.Connection[tuple[object, ...]]
) -> None:
    as_app_role.execute("SELECT set_config('app.current_user', %s, true)", (world.org1.user_id,))
    for table in ("org_membership", "governance_user_roles"):
        rows = as_app_role.execute(sql.SQL("SELECT user_id, org_id FROM {}").format(sql.Identifier(table))).fetchall()
        assert {(str(u), str(o)) for u, o in rows} == {(world.org1.user_id, world.org1.org_id)}, table
    assert as_app_role.execute("SELECT count(*) FROM crm_contacts").fetchone() == (0,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app_role.execute(
            "INSERT INTO org_membership (org_id, user_id) VALUES (%s, %s)", (world.org2.org_id, world.org1.user_id)
        )
    as_app_role.rollback()


def _superuser(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def test_a_role_that_bypasses_row_security_is_refused(database_url: str) -> None:
    if not _superuser(database_url):
        pytest.skip("creating a BYPASSRLS role needs a superuser DATABASE_URL")
    role = f"iam_bypass_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN BYPASSRLS").format(sql.Identifier(role)))
    try:
        with pytest.raises(AppRoleRefused, match="BYPASSRLS"):
            upgrade(database_url, app_role=role)
        upgrade(database_url)
        database = Database(database_url, app_role=role)
        try:
            assert not database.ping()  # every connection refuses to serve as that role
        finally:
            database.dispose()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_plain_owner_migrates_and_serves_and_is_bound_too(
    postgres_server: str, minter: Minter, signing_key: rsa.RSAPrivateKey
) -> None:
    """On a server where DATABASE_URL names an owner that is no superuser (with CREATEROLE), all of it still holds."""
    if not _superuser(postgres_server):
        pytest.skip("creating the owner role needs a superuser server URL")
    suffix = secrets.token_hex(4)
    owner, app_role, database, password = f"iam_owner_{suffix}", f"iam_app_{suffix}", f"iam_own_{suffix}", suffix * 4
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(sql.Identifier(owner), sql.Literal(password))
        )
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
    url = make_url(postgres_server).set(username=owner, password=password, database=database)
    owner_url = url.render_as_string(hide_password=False)
    try:
        settings = Settings(
            database_url=owner_url,
            database_app_role=app_role,
            clerk_jwt_key=public_pem(signing_key),
            clerk_issuer=ISSUER,
            admin_emails=frozenset({ADMIN_EMAIL}),
        )
        upgrade(owner_url, app_role=app_role)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            org1 = sign_in(client, minter, org=ActiveOrg())
            org2 = sign_in(client, minter, org=ActiveOrg())
            foreign = create_contact(client, org2)
            assert client.get(f"/api/contacts/{foreign['id']}", headers=org1.headers).status_code == 404
            assert create_contact(client, org1)["id"] != foreign["id"]
        with psycopg.connect(owner_url) as conn:
            conn.execute("INSERT INTO org_organisation (name) VALUES ('o')")
            # FORCE: the owner itself, not bound to any organisation, sees and writes nothing either.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO crm_contacts (org_id, name) SELECT id, 'x' FROM org_organisation")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(app_role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
