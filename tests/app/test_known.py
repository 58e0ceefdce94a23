"""A known member's request: identity, membership, grants and the row-level security context in one statement
(`app.auth.known`, migration 0008), the same principal the step-by-step way resolves, and nothing else.

Each test compares the one-statement way with `resolve_identity` + `load_principal` on the same rows, checks what
the transaction is left bound to, and that everyone the one statement does not know falls through untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app import tenancy
from app.auth.identity import resolve_identity
from app.auth.known import known_member
from app.auth.policy import Principal
from app.auth.token import OrgClaim, SessionClaims
from app.db import Database
from app.governance import load_principal
from tests.app.support import (
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    add_member,
    clerk_id,
    create_contact,
    sign_in,
)

AppFactory = Callable[..., TestClient]


def database_of(client: TestClient) -> Database:
    """The app's own database layer."""
    database = client.app.state.services.database  # type: ignore[attr-defined]
    assert isinstance(database, Database)
    return database


def claims_of(account: Account, *, org: ActiveOrg | str | None = "theirs") -> SessionClaims:
    """The claims of `account`'s session; `org` another organisation to claim, or None for none."""
    claimed = account.org if org == "theirs" else org
    assert not isinstance(claimed, str)
    return SessionClaims(
        subject=account.sub,
        issued_at=0,
        session_id=None,
        org=None if claimed is None else OrgClaim(external_id=claimed.id, slug=claimed.slug),
    )


def step_by_step(database: Database, claims: SessionClaims) -> Principal:
    """The principal as the step-by-step way resolves it (nothing to provision: the caller is known)."""
    with database.session() as session:
        identity = resolve_identity(session, claims)
        tenancy.bind_org(session, identity.organisation.id)
        return load_principal(session, identity)


def settings(session: Session) -> tuple[str, str]:
    """`app.current_user` and `app.current_org` as the open transaction holds them ('' when unset)."""
    row = session.execute(
        text(
            "SELECT coalesce(current_setting('app.current_user', true), ''), "
            "coalesce(current_setting('app.current_org', true), '')"
        )
    ).one()
    return str(row[0]), str(row[1])


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """Every statement the app's engine sends while the block runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def test_a_known_member_is_the_principal_the_step_by_step_way_resolves(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    manager = add_member(client, admin, minter, ["Member", "Manager"])
    database = database_of(client)
    known: dict[str, Principal] = {}
    for account in (admin, manager):
        with database.session() as session:
            principal = known_member(session, claims_of(account))
        assert principal is not None
        assert principal == step_by_step(database, claims_of(account))
        assert str(principal.user_id) == account.user_id and str(principal.org_id) == account.org_id
        known[account.sub] = principal
    assert set(known[manager.sub].roles) == {"Member", "Manager"}
    assert "members:manage" in known[manager.sub].permissions
    assert "contacts:delete" not in known[manager.sub].permissions


def test_without_an_organisation_claimed_the_oldest_membership_is_active(client: TestClient, minter: Minter) -> None:
    personal = sign_in(client, minter)  # a Personal Workspace, made by this first login
    other = sign_in(client, minter, org=ActiveOrg())
    client.post("/api/members", headers=other.headers, json={"external_id": personal.sub, "roles": ["Viewer"]})
    database = database_of(client)
    with database.session() as session:
        known = known_member(session, claims_of(personal, org=None))
    assert known is not None
    assert str(known.org_id) == personal.org_id  # the workspace came first
    assert known == step_by_step(database, claims_of(personal, org=None))
    assert known.roles == ("Admin",)


def test_the_transaction_acts_for_the_organisation_alone(client: TestClient, minter: Minter) -> None:
    org1, org2 = sign_in(client, minter, org=ActiveOrg()), sign_in(client, minter, org=ActiveOrg())
    for account in (org1, org1, org2):
        create_contact(client, account)
    with database_of(client).session() as session:
        known = known_member(session, claims_of(org1))
        assert known is not None
        assert settings(session) == ("", org1.org_id)  # the user setting is cleared; the organisation is bound
        # No filter: row-level security alone keeps org2's contact and org1's other memberships out.
        assert session.scalar(text("SELECT count(*) FROM crm_contacts")) == 2
        assert session.scalar(text("SELECT count(*) FROM org_membership")) == 1


def test_anyone_it_does_not_know_falls_through_with_nothing_bound(client: TestClient, minter: Minter) -> None:
    member = sign_in(client, minter, org=ActiveOrg())
    stranger = sign_in(client, minter, org=ActiveOrg())
    deleted = sign_in(client, minter, org=ActiveOrg())
    database = database_of(client)
    with database.session() as session:
        client.app.state.services.delete_user(session, deleted.sub)  # type: ignore[attr-defined]
        session.commit()
    first_login = Account(sub=clerk_id("user"), org=ActiveOrg(), headers={}, me={})
    for claims in (
        claims_of(first_login),  # nobody has seen this user
        claims_of(member, org=stranger.org),  # a known organisation the user is not a member of
        claims_of(member, org=ActiveOrg()),  # an organisation nobody has seen
        claims_of(deleted),  # tombstoned at Clerk
    ):
        with database.session() as session:
            assert known_member(session, claims) is None
            assert not session.in_transaction()  # rolled back: the step-by-step way starts clean
            assert settings(session) == ("", "")


def test_a_member_holding_no_role_is_known_with_no_grants(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("skip_role_seed")  # no roles seeded: a first login's member holds none
    account = sign_in(client, minter, org=ActiveOrg())
    database = database_of(client)
    with database.session() as session:
        known = known_member(session, claims_of(account))
    assert known is not None and known.roles == () and known.permissions == ()
    assert known == step_by_step(database, claims_of(account))


def test_a_known_members_request_resolves_the_caller_in_one_statement(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    create_contact(client, admin)
    database = database_of(client)
    with statements(database) as sent:
        assert client.get("/api/me", headers=admin.headers).status_code == 200
    assert sent == [str(text("SELECT * FROM app_known_member(%(provider)s, %(subject)s, %(org)s)"))]
    with statements(database) as sent:
        assert client.get("/api/contacts", headers=admin.headers).status_code == 200
    assert len(sent) == 2 and "app_known_member" in sent[0]  # the caller, then one page with its total
    assert "count(*) OVER ()" in sent[1]


def test_a_first_login_still_provisions_on_the_step_by_step_way(client: TestClient, minter: Minter) -> None:
    org = ActiveOrg()
    sub = clerk_id("user")
    database = database_of(client)
    with statements(database) as sent:
        answer = client.get("/api/me", headers=minter.headers(sub, org=org))
    assert answer.status_code == 200, answer.text
    assert answer.json()["roles"] == ["Admin"]
    assert any("INSERT INTO org_organisation" in statement for statement in sent)
    with database.session() as session:
        again = known_member(session, SessionClaims(sub, 0, None, OrgClaim(external_id=org.id, slug=org.slug)))
    assert again is not None and again.org_id == uuid.UUID(answer.json()["organisation"]["id"])
