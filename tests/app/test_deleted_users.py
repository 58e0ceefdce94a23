"""A user deleted at Clerk (`user.deleted`): their still-valid session opens nothing, and is never re-provisioned."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from alembic import command
from psycopg import sql

from app.auth.identity import UserDeleted, delete_user, provision, resolve_identity
from app.auth.token import OrgClaim, SessionClaims
from app.config import DEFAULT_APP_ROLE
from app.db import Database
from app.migrations import alembic_config, upgrade
from tests.app.support import Account, ActiveOrg, Minter, TestClient, add_member, clerk_id, sign_in, signed_delivery

HOOK = "/webhooks/clerk"
USER_DELETED = {"error": "invalid_token", "reason": "user_deleted"}


def delete_at_clerk(client: TestClient, sub: str) -> None:
    """Clerk deletes the user and tells the app: a signed `user.deleted`, which must be acknowledged."""
    body, headers = signed_delivery("user.deleted", {"object": "user", "id": sub, "deleted": True})
    got = client.post(HOOK, content=body, headers=headers)
    assert (got.status_code, got.json()) == (200, {"status": "processed"}), got.text


def rows_of(database_url: str, sub: str) -> dict[str, int]:
    """How many memberships and roles the Clerk user id holds, and whether it carries a tombstone."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM org_membership m WHERE m.user_id = i.user_id),
                   (SELECT count(*) FROM governance_user_roles r WHERE r.user_id = i.user_id),
                   (i.deleted_at IS NOT NULL)::int
            FROM sys_external_identity i WHERE i.external_id = %s
            """,
            (sub,),
        ).fetchone()
    assert row is not None, f"no identity for {sub}"
    return {"memberships": int(row[0]), "roles": int(row[1]), "tombstoned": int(row[2])}


def org_exists(database_url: str, external_id: str) -> bool:
    """Whether an organisation with this Clerk id was ever created."""
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT 1 FROM org_organisation WHERE external_id = %s", (external_id,)).fetchone()
    return found is not None


def test_a_deleted_users_valid_token_is_refused_on_every_operation(
    client: TestClient, minter: Minter, caplog: pytest.LogCaptureFixture
) -> None:
    user = sign_in(client, minter, org=ActiveOrg(slug="deleted-user"))
    delete_at_clerk(client, user.sub)
    caplog.set_level(logging.INFO, logger="app.errors")
    for token in (user.headers, minter.headers(user.sub, org=user.org), minter.headers(user.sub)):
        for path in ("/api/me", "/api/contacts", "/api/members", f"/api/members/{user.user_id}"):
            got = client.get(path, headers=token)
            assert (got.status_code, got.json()) == (401, USER_DELETED), path
            assert got.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert any(r.getMessage().startswith("token refused reason=user_deleted path=/api/me") for r in caplog.records), (
        "the refusal is logged like every other token refusal"
    )


def test_the_deleted_users_memberships_and_roles_are_removed(
    client: TestClient, minter: Minter, shared_database_url: str
) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    member = add_member(client, admin, minter, roles=["Member", "Viewer"])
    assert rows_of(shared_database_url, member.sub) == {"memberships": 1, "roles": 2, "tombstoned": 0}
    delete_at_clerk(client, member.sub)
    assert rows_of(shared_database_url, member.sub) == {"memberships": 0, "roles": 0, "tombstoned": 1}
    listed = client.get("/api/members", headers=admin.headers).json()
    assert [m["external_id"] for m in listed] == [admin.sub]
    assert client.get(f"/api/members/{member.user_id}", headers=admin.headers).status_code == 404


def test_deleting_the_only_admin_leaves_the_others_working(
    client: TestClient, minter: Minter, shared_database_url: str
) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    member = add_member(client, admin, minter, roles=["Member"])
    delete_at_clerk(client, admin.sub)
    me = client.get("/api/me", headers=minter.headers(member.sub, org=admin.org))
    assert me.status_code == 200 and me.json()["roles"] == ["Member"]
    assert client.post("/api/contacts", headers=member.headers, json={"name": "Still here"}).status_code == 201
    assert client.get("/api/members", headers=member.headers).status_code == 403  # no admin now: nobody manages
    assert rows_of(shared_database_url, admin.sub)["memberships"] == 0


def test_the_dashboard_signs_a_deleted_user_out_and_sign_in_shows_its_form(client: TestClient, minter: Minter) -> None:
    user = sign_in(client, minter, org=ActiveOrg())
    browser = minter.browser(user.sub, org=user.org)
    assert client.get("/dashboard", headers=browser).status_code == 200
    delete_at_clerk(client, user.sub)
    got = client.get("/dashboard", headers=minter.browser(user.sub, org=user.org), follow_redirects=False)
    assert (got.status_code, got.headers["location"]) == (303, "/sign-in")
    # Sign-in must not send the deleted user back to the dashboard: the two would bounce the browser forever.
    form = client.get("/sign-in", headers=minter.browser(user.sub, org=user.org), follow_redirects=False)
    assert form.status_code == 200 and '<main data-testid="sign-in">' in form.text
    assert "location.replace" not in form.text


def test_a_deletion_that_overtakes_the_first_login_refuses_it(
    client: TestClient, minter: Minter, shared_database_url: str
) -> None:
    sub, org = clerk_id("user"), ActiveOrg()
    delete_at_clerk(client, sub)
    for token in (minter.headers(sub, org=org), minter.headers(sub)):
        got = client.get("/api/me", headers=token)
        assert (got.status_code, got.json()) == (401, USER_DELETED)
    page = client.get("/dashboard", headers=minter.browser(sub, org=org), follow_redirects=False)
    assert page.status_code == 303
    assert rows_of(shared_database_url, sub) == {"memberships": 0, "roles": 0, "tombstoned": 1}
    assert not org_exists(shared_database_url, org.id)  # the refused login provisioned nothing


def test_a_deleted_user_cannot_be_added_as_a_member(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    gone = clerk_id("user")
    delete_at_clerk(client, gone)
    got = client.post("/api/members", headers=admin.headers, json={"external_id": gone, "roles": ["Member"]})
    assert (got.status_code, got.json()) == (422, {"error": "invalid_request", "reason": "user_deleted"})


def test_the_fault_serves_a_deleted_user_again(
    make_client: Callable[..., TestClient], minter: Minter, shared_database_url: str
) -> None:
    client = make_client("deleted_user_accepted")
    user = sign_in(client, minter, org=ActiveOrg())
    delete_at_clerk(client, user.sub)
    assert rows_of(shared_database_url, user.sub) == {"memberships": 1, "roles": 1, "tombstoned": 1}
    me = client.get("/api/me", headers=minter.headers(user.sub, org=user.org))
    assert me.status_code == 200 and me.json() == user.me
    assert client.get("/dashboard", headers=minter.browser(user.sub, org=user.org)).status_code == 200
    # A deletion that overtook the first login does not stop it either: the deleted id is provisioned.
    early = clerk_id("user")
    delete_at_clerk(client, early)
    first = client.get("/api/me", headers=minter.headers(early, org=ActiveOrg()))
    assert first.status_code == 200 and first.json()["roles"] == ["Admin"]


def test_the_healthy_app_refuses_what_the_fault_let_in(
    make_client: Callable[..., TestClient], client: TestClient, minter: Minter
) -> None:
    faulty = make_client("deleted_user_accepted")
    user = sign_in(faulty, minter, org=ActiveOrg())
    delete_at_clerk(faulty, user.sub)
    assert faulty.get("/api/me", headers=user.headers).status_code == 200
    # The tombstone was recorded all along: the same database, served without the fault, refuses the user.
    assert client.get("/api/me", headers=user.headers).status_code == 401


# -- racing a first login, at the level of the identity code ----------------------------------------------------


def test_a_deletion_waits_for_a_first_login_in_flight_and_tombstones_its_user(
    database: Database, database_url: str
) -> None:
    claims = SessionClaims(subject=clerk_id("user"), issued_at=0, session_id=None, org=None)
    with database.session() as login:
        provision(login, claims)  # inserted, not committed
        with ThreadPoolExecutor(max_workers=1) as pool:

            def deletion() -> int:
                with database.session() as session:
                    removed = delete_user(session, claims.subject).memberships_removed
                    session.commit()
                    return removed

            deleting = pool.submit(deletion)
            time.sleep(0.3)
            assert not deleting.done(), "the deletion did not wait for the first login's transaction"
            login.commit()
            assert deleting.result(timeout=10) == 1
    assert rows_of(database_url, claims.subject) == {"memberships": 0, "roles": 0, "tombstoned": 1}
    with database.session() as session, pytest.raises(UserDeleted):
        resolve_identity(session, claims)


@pytest.mark.parametrize("with_org", [False, True], ids=["personal-workspace", "new-clerk-org"])
def test_a_first_login_waits_for_a_deletion_in_flight_and_is_refused(
    database: Database, database_url: str, with_org: bool
) -> None:
    org = OrgClaim(external_id=clerk_id("org"), slug="raced") if with_org else None
    claims = SessionClaims(subject=clerk_id("user"), issued_at=0, session_id=None, org=org)
    with database.session() as deleting:
        delete_user(deleting, claims.subject)  # the tombstone of an id never seen: inserted, not committed
        with ThreadPoolExecutor(max_workers=1) as pool:

            def login() -> str:
                with database.session() as session:
                    try:
                        return str(resolve_identity(session, claims).user_id)
                    except UserDeleted:
                        return "user_deleted"

            logging_in = pool.submit(login)
            time.sleep(0.3)
            assert not logging_in.done(), "the first login did not wait for the deletion's transaction"
            deleting.commit()
            assert logging_in.result(timeout=10) == "user_deleted"
    assert rows_of(database_url, claims.subject) == {"memberships": 0, "roles": 0, "tombstoned": 1}
    assert org is None or not org_exists(database_url, org.external_id)


@pytest.mark.parametrize("first", ["login", "deletion"])
def test_a_known_users_login_into_a_new_org_and_a_deletion_leave_no_member_either_way(
    database: Database, database_url: str, first: str
) -> None:
    sub = clerk_id("user")
    with database.session() as session:
        resolve_identity(session, SessionClaims(subject=sub, issued_at=0, session_id=None, org=None))
    org = OrgClaim(external_id=clerk_id("org"), slug="raced-known-user")
    claims = SessionClaims(subject=sub, issued_at=0, session_id=None, org=org)

    def second() -> str:
        with database.session() as session:  # rolled back on close unless committed, as a request's is
            if first == "login":
                removed = delete_user(session, sub).memberships_removed
                session.commit()
                return str(removed)
            try:
                return str(resolve_identity(session, claims).user_id)
            except UserDeleted:
                return "user_deleted"

    with database.session() as held:
        if first == "login":
            provision(held, claims)  # the new org and its first member, not committed
        else:
            delete_user(held, sub)
        with ThreadPoolExecutor(max_workers=1) as pool:
            racing = pool.submit(second)
            time.sleep(0.3)
            assert not racing.done(), f"the second transaction did not wait for the {first}"
            held.commit()
            # Deleting second removes both memberships (Personal Workspace, new org); logging in second is refused.
            assert racing.result(timeout=10) == ("2" if first == "login" else "user_deleted")
    assert rows_of(database_url, sub) == {"memberships": 0, "roles": 0, "tombstoned": 1}
    assert first == "login" or not org_exists(database_url, org.external_id)


# -- the migration and the grant -------------------------------------------------------------------------------


def identity_columns(database_url: str) -> set[str]:
    """The columns of `sys_external_identity`."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'sys_external_identity'"
        )
        return {str(row[0]) for row in rows}


def test_the_tombstone_revision_downgrades_and_upgrades(database_url: str) -> None:
    upgrade(database_url)
    config = alembic_config(database_url)
    config.attributes["app_role"] = None  # the app role's grants are the newest schema's, re-asserted by upgrade
    command.downgrade(config, "0003")
    assert "deleted_at" not in identity_columns(database_url)
    upgrade(database_url)
    assert "deleted_at" in identity_columns(database_url)


def test_the_app_role_may_set_the_tombstone_and_nothing_else_of_an_identity(
    client: TestClient, minter: Minter, shared_database_url: str
) -> None:
    user: Account = sign_in(client, minter)
    with psycopg.connect(shared_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(DEFAULT_APP_ROLE)))  # for the whole session
        with conn.transaction(force_rollback=True):
            marked = conn.execute(
                "UPDATE sys_external_identity SET deleted_at = now() WHERE external_id = %s", (user.sub,)
            )
            assert marked.rowcount == 1
        for statement in (
            "UPDATE sys_external_identity SET user_id = user_id WHERE external_id = %s",
            "UPDATE sys_external_identity SET external_id = external_id WHERE external_id = %s",
            "DELETE FROM sys_external_identity WHERE external_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction(force_rollback=True):
                conn.execute(statement, (user.sub,))
    assert client.get("/api/me", headers=user.headers).status_code == 200
