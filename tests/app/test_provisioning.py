"""Layer 2: a first login provisions exactly one user and one organisation, transactionally, even when racing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from app.auth.identity import NotAMember, provision, resolve_identity
from app.auth.token import OrgClaim, SessionClaims
from app.db import Database
from tests.app.support import ActiveOrg, Minter, TestClient, add_member, clerk_id, sign_in


def counts(database_url: str, sub: str) -> dict[str, int]:
    """How many rows a user's provisioning left behind."""
    with psycopg.connect(database_url) as conn:
        user = conn.execute("SELECT user_id FROM sys_external_identity WHERE external_id = %s", (sub,)).fetchall()
        user_ids = [row[0] for row in user]
        query = {
            "identities": ("SELECT count(*) FROM sys_external_identity WHERE external_id = %s", (sub,)),
            "users": ("SELECT count(*) FROM sys_user WHERE id = ANY(%s)", (user_ids,)),
            "workspaces": ("SELECT count(*) FROM org_organisation WHERE personal_owner_id = ANY(%s)", (user_ids,)),
            "memberships": ("SELECT count(*) FROM org_membership WHERE user_id = ANY(%s)", (user_ids,)),
            "roles": ("SELECT count(*) FROM governance_user_roles WHERE user_id = ANY(%s)", (user_ids,)),
            "all_users": ("SELECT count(*) FROM sys_user", ()),
            "all_orgs": ("SELECT count(*) FROM org_organisation", ()),
        }
        out = {}
        for name, (sql, params) in query.items():
            row = conn.execute(sql, params).fetchone()
            assert row is not None
            out[name] = int(row[0])
        return out


def test_first_login_gets_a_personal_workspace_as_admin(client: TestClient, minter: Minter) -> None:
    me = sign_in(client, minter).me
    assert me["organisation"]["name"] == "Personal Workspace"
    assert me["organisation"]["external_id"] is None
    assert me["roles"] == ["Admin"]
    assert "members:manage" in me["permissions"]


def test_a_return_visit_resolves_the_same_user_and_organisation(client: TestClient, minter: Minter) -> None:
    first = sign_in(client, minter)
    again = sign_in(client, minter, sub=first.sub)
    assert again.me == first.me


@pytest.mark.parametrize("v1", [False, True], ids=["v2-o-claim", "v1-org-claims"])
def test_first_user_of_a_new_clerk_org_is_its_admin(client: TestClient, minter: Minter, v1: bool) -> None:
    org = ActiveOrg(slug="acme-corp")
    headers = minter.headers(clerk_id("user"), org=org, v1=v1)
    me = client.get("/api/me", headers=headers).json()
    assert me["organisation"]["external_id"] == org.id
    assert me["organisation"]["name"] == "acme-corp"
    assert me["roles"] == ["Admin"]


def test_a_known_org_the_user_is_not_a_member_of_is_403(client: TestClient, minter: Minter) -> None:
    org = ActiveOrg()
    sign_in(client, minter, org=org)
    got = client.get("/api/me", headers=minter.headers(clerk_id("user"), org=org))
    assert got.status_code == 403
    assert got.json() == {"error": "forbidden", "reason": "not_a_member"}


def test_without_org_claim_the_oldest_membership_is_active(client: TestClient, minter: Minter) -> None:
    owner = sign_in(client, minter, org=ActiveOrg())
    member = add_member(client, owner, minter, roles=["Viewer"])
    me = client.get("/api/me", headers=minter.headers(member.sub)).json()
    assert me["organisation"]["id"] == owner.org_id
    assert me["roles"] == ["Viewer"]


def test_first_user_not_admin_fault_hands_out_member(make_client: Callable[..., TestClient], minter: Minter) -> None:
    client = make_client("first_user_not_admin")
    assert sign_in(client, minter).me["roles"] == ["Member"]
    assert sign_in(client, minter, org=ActiveOrg()).me["roles"] == ["Member"]


def _race(database: Database, claims: SessionClaims, n: int) -> list[str]:
    barrier = threading.Barrier(n)

    def login() -> str:
        with database.session() as session:
            barrier.wait()
            try:
                return str(resolve_identity(session, claims).organisation.id)
            except NotAMember:
                return "not_a_member"

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: login(), range(n)))


@pytest.mark.parametrize("with_org", [False, True], ids=["personal-workspace", "new-clerk-org"])
def test_racing_first_logins_create_one_user_and_one_org(database: Database, database_url: str, with_org: bool) -> None:
    for _ in range(3):
        sub = clerk_id("user")
        org = OrgClaim(external_id=clerk_id("org"), slug="raced") if with_org else None
        before = counts(database_url, sub)
        orgs = _race(database, SessionClaims(subject=sub, issued_at=0, session_id=None, org=org), 6)
        assert len(set(orgs)) == 1 and "not_a_member" not in orgs
        after = counts(database_url, sub)
        assert (after["identities"], after["users"], after["memberships"], after["roles"]) == (1, 1, 1, 1)
        assert after["workspaces"] == (0 if with_org else 1)
        assert after["all_users"] - before["all_users"] == 1
        assert after["all_orgs"] - before["all_orgs"] == 1


def test_the_loser_of_a_race_waits_for_the_winner_and_reuses_its_rows(database: Database, database_url: str) -> None:
    """Deterministic interleaving: the winner has inserted but not committed; the loser must block, then reuse."""
    claims = SessionClaims(subject=clerk_id("user"), issued_at=0, session_id=None, org=None)
    with database.session() as winner:
        won = provision(winner, claims)
        with ThreadPoolExecutor(max_workers=1) as pool:

            def lose() -> str:
                with database.session() as session:
                    return str(resolve_identity(session, claims).organisation.id)

            loser = pool.submit(lose)
            time.sleep(0.3)
            assert not loser.done(), "the second login did not wait for the first one's transaction"
            winner.commit()
            assert loser.result(timeout=10) == str(won.organisation.id)
    after = counts(database_url, claims.subject)
    assert (after["users"], after["workspaces"], after["memberships"], after["roles"]) == (1, 1, 1, 1)


def test_provisioning_rolled_back_leaves_nothing(database: Database, database_url: str) -> None:
    """A failure before the commit leaves no half-provisioned user (one transaction for all of it)."""
    claims = SessionClaims(subject=clerk_id("user"), issued_at=0, session_id=None, org=None)
    with database.session() as session:
        provision(session, claims)
        session.rollback()
    after = counts(database_url, claims.subject)
    assert (after["identities"], after["all_users"], after["all_orgs"]) == (0, 0, 0)


FAIL_MIDWAY = {"X-Test-Provisioning-Fails": "after-organisation"}


def _racing_logins(client: TestClient, headers: dict[str, str], n: int) -> list[tuple[int, str | None]]:
    """`n` first requests of one user, released together: each one's status and the user id it names."""
    barrier = threading.Barrier(n)

    def login() -> tuple[int, str | None]:
        barrier.wait(timeout=30)
        got = client.get("/api/me", headers=headers)
        return got.status_code, got.json().get("user", {}).get("id") if got.status_code == 200 else None

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: login(), range(n)))


def test_the_failure_hook_breaks_a_first_login_midway_and_leaves_nothing(
    client: TestClient, minter: Minter, shared_database_url: str
) -> None:
    """The test-mode hook fails the login after its organisation insert; the rollback takes all of it back, and
    the next login provisions cleanly."""
    sub = clerk_id("user")
    failed = client.get("/api/me", headers={**minter.headers(sub), **FAIL_MIDWAY})
    assert failed.status_code == 500, failed.text
    assert "INSERT" not in failed.text
    left = counts(shared_database_url, sub)
    assert (left["identities"], left["workspaces"]) == (0, 0)
    assert sign_in(client, minter, sub=sub).me["roles"] == ["Admin"]
    after = counts(shared_database_url, sub)
    assert (after["identities"], after["users"], after["workspaces"], after["memberships"], after["roles"]) == (
        1,
        1,
        1,
        1,
        1,
    )


def test_the_failure_hook_is_ignored_outside_test_mode(make_client: Callable[..., TestClient], minter: Minter) -> None:
    client = make_client(app_mode="production")
    got = client.get("/api/me", headers={**minter.headers(clerk_id("user")), **FAIL_MIDWAY})
    assert got.status_code == 200, got.text
    assert got.json()["roles"] == ["Admin"]


def test_provision_not_transactional_leaves_a_half_made_user_locked_out(
    make_client: Callable[..., TestClient], minter: Minter, shared_database_url: str
) -> None:
    client = make_client("provision_not_transactional")
    sub = clerk_id("user")
    assert client.get("/api/me", headers={**minter.headers(sub), **FAIL_MIDWAY}).status_code == 500
    left = counts(shared_database_url, sub)
    assert (left["identities"], left["users"], left["workspaces"], left["memberships"]) == (1, 1, 1, 0)
    again = client.get("/api/me", headers=minter.headers(sub))
    assert again.status_code == 403, again.text  # their own Personal Workspace does not know them
    assert sign_in(client, minter).me["roles"] == ["Admin"]  # without a failure, the fault changes nothing


def test_provision_race_makes_several_users_of_one_sub(make_client: Callable[..., TestClient], minter: Minter) -> None:
    client = make_client("provision_race")
    for _ in range(3):
        seen = _racing_logins(client, minter.headers(clerk_id("user")), 12)
        users = {user for status, user in seen if user is not None}
        if len(users) > 1 or any(status != 200 for status, _ in seen):
            return
    pytest.fail("three rounds of 12 racing first logins made one user each: the race fault is not racy")


def test_racing_first_requests_over_http_make_one_user(client: TestClient, minter: Minter) -> None:
    seen = _racing_logins(client, minter.headers(clerk_id("user")), 12)
    assert {status for status, _ in seen} == {200}
    assert len({user for _, user in seen}) == 1
