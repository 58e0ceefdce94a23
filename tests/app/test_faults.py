"""Each fault switch brings back its bug, and the bug shows from outside, over HTTP, with row-level security on.

`no_org_scope` is the exception by design: alone, row-level security masks it; with `no_rls` it leaks.
Some bugs escape row-level security by running a query on the owner's connection, as such bugs do; they
show wherever that connection bypasses row-level security (a superuser, as the embedded server's).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.app.support import (
    RANDOM_ID,
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    add_member,
    create_contact,
    create_deal,
    create_note,
    sign_in,
)

AppFactory = Callable[..., TestClient]


@dataclass(frozen=True)
class TwoOrgs:
    """org1 (the caller) and org2 (the victim), whose contact, deal and note carry `marker`."""

    marker: str
    org1: Account
    org2: Account
    contact: dict[str, Any]
    deal: dict[str, Any]
    note: dict[str, Any]


def two_orgs(client: TestClient, minter: Minter) -> TwoOrgs:
    marker = f"canary-{secrets.token_hex(6)}"
    org1 = sign_in(client, minter, org=ActiveOrg(slug="org-one"))
    org2 = sign_in(client, minter, org=ActiveOrg(slug="org-two"))
    contact = client.post(
        "/api/contacts", headers=org2.headers, json={"name": f"{marker} name", "email": f"{marker}@example.org"}
    ).json()
    deal = create_deal(client, org2, title=f"{marker} deal", contact_id=contact["id"])
    note = create_note(client, org2, deal["id"], body=f"{marker} note")
    return TwoOrgs(marker, org1, org2, contact, deal, note)


def _newest(client: TestClient, path: str, headers: dict[str, str]) -> str:
    """The text of the newest page of a paged list (the shared database holds many other tests' records)."""
    total = int(client.get(path, headers=headers, params={"limit": 1}).headers.get("x-total-count", "0"))
    page: str = client.get(path, headers=headers, params={"limit": 100, "offset": max(total - 100, 0)}).text
    return page


@pytest.fixture
def owner_bypasses_rls(shared_database_url: str) -> None:
    """Skip unless DATABASE_URL's own role bypasses row-level security (the faults that escape need that)."""
    with psycopg.connect(shared_database_url) as conn:
        row = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    if not (row and row[0]):
        pytest.skip("DATABASE_URL's role is bound by FORCE ROW LEVEL SECURITY; the owner-connection escape is masked")


def _leaks(client: TestClient, w: TwoOrgs) -> dict[str, bool]:
    """Which reads by org1 show org2's data."""
    c, d, n = w.contact["id"], w.deal["id"], w.note["id"]
    reads = {
        "contact": f"/api/contacts/{c}",
        "search": f"/api/contacts/search?q={w.marker}",
        "export": "/api/contacts/export.csv",
        "deal": f"/api/deals/{d}",
        "notes": f"/api/deals/{d}/notes",
        "note": f"/api/deals/{d}/notes/{n}",
        "member": f"/api/members/{w.org2.user_id}",
    }
    found = {}
    for name, path in reads.items():
        got = client.get(path, headers=w.org1.headers)
        found[name] = got.status_code == 200 and (w.marker in got.text or w.org2.sub in got.text)
    for name, path in (("contacts", "/api/contacts"), ("deals", "/api/deals")):
        found[name] = w.marker in _newest(client, path, w.org1.headers)
    return found


def test_no_org_scope_alone_leaks_nothing_because_row_level_security_holds(
    make_client: AppFactory, minter: Minter
) -> None:
    client = make_client("no_org_scope")
    w = two_orgs(client, minter)
    assert not any(_leaks(client, w).values()), _leaks(client, w)
    bulk = client.post("/api/contacts/bulk-delete", headers=w.org1.headers, json={"ids": [w.contact["id"]]})
    assert bulk.json() == {"deleted": 0}


def test_no_org_scope_with_no_rls_leaks_everywhere(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("no_org_scope,no_rls")
    w = two_orgs(client, minter)
    assert all(_leaks(client, w).values()), _leaks(client, w)
    bulk = client.post("/api/contacts/bulk-delete", headers=w.org1.headers, json={"ids": [w.contact["id"]]})
    assert bulk.json() == {"deleted": 1}
    assert client.get(f"/api/contacts/{w.contact['id']}", headers=w.org2.headers).status_code == 404


def test_no_rls_alone_leaks_nothing_over_http_but_the_schema_shows_it(
    make_client: AppFactory, minter: Minter, database_url: str
) -> None:
    client = make_client("no_rls")
    w = two_orgs(client, minter)
    assert not any(_leaks(client, w).values())
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relnamespace = 'public'::regnamespace"
        ).fetchall()
    assert rows == []


@pytest.mark.usefixtures("owner_bypasses_rls")
def test_list_ignores_org_lists_searches_and_exports_other_orgs(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("list_ignores_org")
    w = two_orgs(client, minter)
    leaks = _leaks(client, w)
    assert leaks["contacts"] and leaks["search"] and leaks["export"] and leaks["deals"]
    assert not leaks["contact"] and not leaks["deal"]  # reads by id still hold
    total = client.get("/api/contacts", headers=w.org1.headers).headers["x-total-count"]
    assert int(total) > 0  # org1 has no contact of its own: the count is other organisations'


def test_cross_org_reference_accepts_another_orgs_contact(
    make_client: AppFactory, minter: Minter, shared_database_url: str
) -> None:
    client = make_client("cross_org_reference")
    w = two_orgs(client, minter)
    got = client.post("/api/deals", headers=w.org1.headers, json={"title": "mine", "contact_id": w.contact["id"]})
    assert got.status_code == 201 and got.json()["contact_id"] == w.contact["id"]
    own = create_deal(client, w.org1)
    moved = client.patch(f"/api/deals/{own['id']}", headers=w.org1.headers, json={"contact_id": w.contact["id"]})
    assert moved.status_code == 200
    # A missing contact is still refused, so the answer tells org2's ids apart from random ones.
    assert (
        client.post("/api/deals", headers=w.org1.headers, json={"title": "x", "contact_id": RANDOM_ID}).status_code
        == 422
    )


@pytest.mark.usefixtures("owner_bypasses_rls")
def test_cross_org_reference_shows_the_other_orgs_contact_through_the_deal(
    make_client: AppFactory, minter: Minter
) -> None:
    client = make_client("cross_org_reference")
    w = two_orgs(client, minter)
    deal = create_deal(client, w.org1, contact_id=w.contact["id"])
    assert deal["contact_name"] == f"{w.marker} name"
    assert w.marker in client.get(f"/api/deals/{deal['id']}", headers=w.org1.headers).text


def test_mass_assign_org_id_creates_records_in_another_org(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("mass_assign_org_id")
    w = two_orgs(client, minter)
    planted = client.post(
        "/api/contacts", headers=w.org1.headers, json={"name": "planted-by-org1", "org_id": w.org2.org_id}
    )
    assert planted.status_code == 201
    deal = client.post("/api/deals", headers=w.org1.headers, json={"title": "planted-deal", "org_id": w.org2.org_id})
    assert deal.status_code == 201
    assert "planted-by-org1" in client.get("/api/contacts", headers=w.org2.headers).text
    assert "planted-deal" in client.get("/api/deals", headers=w.org2.headers).text
    assert "planted" not in client.get("/api/contacts", headers=w.org1.headers).text


def test_mass_assign_org_id_moves_are_stopped_by_row_level_security(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("mass_assign_org_id")
    w = two_orgs(client, minter)
    own = create_contact(client, w.org1, name="stays-home")
    got = client.patch(f"/api/contacts/{own['id']}", headers=w.org1.headers, json={"org_id": w.org2.org_id})
    # the bug tries; PostgreSQL's row-level security lets no row match the move, which answers as a missing record
    assert got.status_code == 404
    assert client.get(f"/api/contacts/{own['id']}", headers=w.org1.headers).json()["name"] == "stays-home"


def test_mass_assign_org_id_moves_records_without_row_level_security(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("mass_assign_org_id,no_rls")
    w = two_orgs(client, minter)
    own = create_deal(client, w.org1, title="moved-deal")
    create_note(client, w.org1, own["id"], body="moved-note")
    got = client.patch(f"/api/deals/{own['id']}", headers=w.org1.headers, json={"org_id": w.org2.org_id})
    assert got.status_code == 200
    assert client.get(f"/api/deals/{own['id']}", headers=w.org1.headers).status_code == 404
    assert "moved-note" in client.get(f"/api/deals/{own['id']}/notes", headers=w.org2.headers).text


@pytest.mark.usefixtures("owner_bypasses_rls")
def test_existence_oracle_answers_403_for_other_orgs_and_404_for_missing(
    make_client: AppFactory, minter: Minter
) -> None:
    client = make_client("existence_oracle")
    w = two_orgs(client, minter)
    for path in (
        f"/api/contacts/{w.contact['id']}",
        f"/api/deals/{w.deal['id']}",
        f"/api/deals/{w.deal['id']}/notes",
        f"/api/members/{w.org2.user_id}",
    ):
        foreign = client.get(path, headers=w.org1.headers)
        missing = client.get(path.replace(path.split("/")[3], RANDOM_ID), headers=w.org1.headers)
        assert (foreign.status_code, missing.status_code) == (403, 404), path
        assert w.marker not in foreign.text


@pytest.mark.parametrize("how", ["header", "query"])
def test_org_header_switches_org_reads_another_org_without_membership(
    make_client: AppFactory, minter: Minter, how: str
) -> None:
    healthy = make_client()
    faulty = make_client("org_header_switches_org")
    for client, leaks in ((healthy, False), (faulty, True)):
        w = two_orgs(client, minter)
        headers = {**w.org1.headers, "X-Org-Id": w.org2.org_id} if how == "header" else w.org1.headers
        params = {"org_id": w.org2.org_id} if how == "query" else {}
        listed = client.get("/api/contacts", headers=headers, params=params)
        read = client.get(f"/api/contacts/{w.contact['id']}", headers=headers, params=params)
        me = client.get("/api/me", headers=headers, params=params).json()
        assert (w.marker in listed.text, read.status_code == 200) == (leaks, leaks)
        assert (me["organisation"]["id"] == w.org2.org_id) == leaks


def test_viewer_can_write_lets_a_viewer_change_business_records(make_client: AppFactory, minter: Minter) -> None:
    client = make_client("viewer_can_write")
    admin = sign_in(client, minter, org=ActiveOrg())
    viewer = add_member(client, admin, minter, roles=["Viewer"])
    member = add_member(client, admin, minter, roles=["Member"])
    contact = client.post("/api/contacts", headers=viewer.headers, json={"name": "by-viewer"})
    assert contact.status_code == 201
    assert (
        client.patch(f"/api/contacts/{contact.json()['id']}", headers=viewer.headers, json={"notes": "x"}).status_code
        == 200
    )
    deal = client.post("/api/deals", headers=viewer.headers, json={"title": "by-viewer"})
    assert deal.status_code == 201
    notes = f"/api/deals/{deal.json()['id']}/notes"
    assert client.post(notes, headers=viewer.headers, json={"body": "by-viewer"}).status_code == 201
    assert client.delete(f"/api/deals/{deal.json()['id']}", headers=viewer.headers).status_code == 204
    assert client.delete(f"/api/contacts/{contact.json()['id']}", headers=viewer.headers).status_code == 204
    # Only the read-only guard is lost: other refusals stand.
    assert client.get("/api/members", headers=viewer.headers).status_code == 403
    assert (
        client.delete(f"/api/contacts/{create_contact(client, admin)['id']}", headers=member.headers).status_code == 403
    )


def test_sql_error_leaks_answers_500_with_the_database_error(make_client: AppFactory, minter: Minter) -> None:
    for faults, status in (("", 422), ("sql_error_leaks", 500)):
        client = make_client(faults)
        admin = sign_in(client, minter)
        got = client.post("/api/contacts/bulk-delete", headers=admin.headers, json={"ids": ["not-a-uuid"]})
        assert got.status_code == status, faults
        leaked = "invalid input syntax for type uuid" in got.text and "DELETE FROM crm_contacts" in got.text
        assert leaked == bool(faults), got.text
        searched = client.get("/api/contacts/search", headers=admin.headers, params={"q": "a\x00b"})
        assert searched.status_code == status, faults
        assert ("NUL" in searched.text and "FROM crm_contacts" in searched.text) == bool(faults), searched.text
