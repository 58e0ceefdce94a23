"""Contacts in bulk: pages, search, CSV export and bulk delete, each limited to the caller's organisation."""

from __future__ import annotations

import csv
import io

import pytest

from tests.app.support import (
    RANDOM_ID,
    Account,
    ActiveOrg,
    Minter,
    TestClient,
    add_member,
    create_contact,
    sign_in,
)


@pytest.fixture
def org2(client: TestClient, minter: Minter) -> Account:
    """Another organisation with a contact whose every field carries a marker org1 must never see."""
    account = sign_in(client, minter, org=ActiveOrg(slug="org-two"))
    created = client.post(
        "/api/contacts",
        headers=account.headers,
        json={"name": "Zed canary-org2", "email": "canary-org2@example.org", "notes": "canary-org2"},
    )
    assert created.status_code == 201
    return account


def test_a_list_is_paged_oldest_first_with_the_total_in_a_header(
    client: TestClient, org1: Account, org2: Account
) -> None:
    made = [create_contact(client, org1, name=f"c{i}")["id"] for i in range(5)]
    first = client.get("/api/contacts", headers=org1.headers, params={"limit": 2})
    assert first.status_code == 200 and first.headers["x-total-count"] == "5"
    assert [c["id"] for c in first.json()] == made[:2]
    pages = [
        client.get("/api/contacts", headers=org1.headers, params={"limit": 2, "offset": offset}).json()
        for offset in (0, 2, 4)
    ]
    assert [c["id"] for page in pages for c in page] == made
    beyond = client.get("/api/contacts", headers=org1.headers, params={"offset": 10})
    assert (beyond.json(), beyond.headers["x-total-count"]) == ([], "5")


def test_the_default_page_is_fifty(client: TestClient, org1: Account) -> None:
    for i in range(51):
        create_contact(client, org1, name=f"c{i}")
    got = client.get("/api/contacts", headers=org1.headers)
    assert len(got.json()) == 50 and got.headers["x-total-count"] == "51"


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 10**24}, {"limit": "ten"}],
    ids=["limit-0", "limit-101", "negative-offset", "huge-offset", "not-a-number"],
)
def test_bad_paging_is_422(client: TestClient, org1: Account, params: dict[str, object]) -> None:
    got = client.get("/api/contacts", headers=org1.headers, params=params)
    assert got.status_code == 422 and got.json()["error"] == "invalid_request"


def test_search_finds_name_email_and_notes_in_any_case(client: TestClient, org1: Account, org2: Account) -> None:
    by_name = create_contact(client, org1, name="Grace Hopper")["id"]
    by_notes = client.post(
        "/api/contacts", headers=org1.headers, json={"name": "Alan", "notes": "met grace at the summit"}
    ).json()["id"]
    by_email = client.post(
        "/api/contacts", headers=org1.headers, json={"name": "Kay", "email": "kay.GRACE@example.org"}
    ).json()["id"]
    create_contact(client, org1, name="Linus")
    got = client.get("/api/contacts/search", headers=org1.headers, params={"q": "GrAcE"})
    assert got.status_code == 200 and got.headers["x-total-count"] == "3"
    assert [c["id"] for c in got.json()] == [by_name, by_notes, by_email]
    paged = client.get("/api/contacts/search", headers=org1.headers, params={"q": "grace", "limit": 1, "offset": 1})
    assert [c["id"] for c in paged.json()] == [by_notes]


def test_search_never_reaches_another_organisation(client: TestClient, org1: Account, org2: Account) -> None:
    create_contact(client, org1, name="canary-org1")
    got = client.get("/api/contacts/search", headers=org1.headers, params={"q": "canary"})
    assert [c["name"] for c in got.json()] == ["canary-org1"] and got.headers["x-total-count"] == "1"
    assert "canary-org2" not in got.text


def test_search_wildcards_are_literal(client: TestClient, org1: Account) -> None:
    create_contact(client, org1, name="100% sure")
    create_contact(client, org1, name="a_b")
    create_contact(client, org1, name="plain")
    assert [c["name"] for c in client.get("/api/contacts/search?q=%25", headers=org1.headers).json()] == ["100% sure"]
    assert [c["name"] for c in client.get("/api/contacts/search?q=_", headers=org1.headers).json()] == ["a_b"]


@pytest.mark.parametrize(
    "query", ["", "?q=", "?q=" + "x" * 201, "?q=a%00b"], ids=["missing", "empty", "too-long", "nul"]
)
def test_search_needs_a_bounded_query(client: TestClient, org1: Account, query: str) -> None:
    got = client.get(f"/api/contacts/search{query}", headers=org1.headers)
    assert got.status_code == 422 and got.json()["error"] == "invalid_request"


def test_export_is_the_organisations_contacts_as_csv(client: TestClient, org1: Account, org2: Account) -> None:
    one = create_contact(client, org1, name="Ada, Countess")
    got = client.get("/api/contacts/export.csv", headers=org1.headers)
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == 'attachment; filename="contacts.csv"'
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0] == ["id", "name", "email", "notes", "created_at", "updated_at"]
    assert rows[1][:4] == [one["id"], "Ada, Countess", "ada@example.org", "n"]
    assert len(rows) == 2 and "canary-org2" not in got.text


def test_export_cannot_carry_a_spreadsheet_formula(client: TestClient, org1: Account) -> None:
    create_contact(client, org1, name='=HYPERLINK("http://evil.example","x")')
    rows = list(csv.reader(io.StringIO(client.get("/api/contacts/export.csv", headers=org1.headers).text)))
    assert rows[1][1] == '\'=HYPERLINK("http://evil.example","x")'


def test_bulk_delete_deletes_only_the_callers_contacts(client: TestClient, org1: Account, org2: Account) -> None:
    mine = [create_contact(client, org1, name=f"c{i}")["id"] for i in range(3)]
    foreign = client.get("/api/contacts", headers=org2.headers).json()[0]["id"]
    got = client.post(
        "/api/contacts/bulk-delete", headers=org1.headers, json={"ids": [mine[0], mine[1], mine[1], foreign]}
    )
    assert (got.status_code, got.json()) == (200, {"deleted": 2})
    assert [c["id"] for c in client.get("/api/contacts", headers=org1.headers).json()] == [mine[2]]
    assert client.get(f"/api/contacts/{foreign}", headers=org2.headers).status_code == 200


def test_bulk_delete_says_the_same_for_a_foreign_id_and_a_missing_one(
    client: TestClient, org1: Account, org2: Account
) -> None:
    foreign = client.get("/api/contacts", headers=org2.headers).json()[0]["id"]
    answers = [
        client.post("/api/contacts/bulk-delete", headers=org1.headers, json={"ids": [contact_id]})
        for contact_id in (foreign, RANDOM_ID)
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"deleted": 0})] * 2


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": ["not-a-uuid"]}, {"ids": [RANDOM_ID] * 501}, {"ids": [RANDOM_ID], "all": True}],
    ids=["no-ids", "empty", "malformed-id", "too-many", "extra-field"],
)
def test_bulk_delete_refuses_a_malformed_body(client: TestClient, org1: Account, body: object) -> None:
    create_contact(client, org1)
    got = client.post("/api/contacts/bulk-delete", headers=org1.headers, json=body)
    assert got.status_code == 422 and got.json()["error"] == "invalid_request"
    assert "not-a-uuid" not in got.text
    assert len(client.get("/api/contacts", headers=org1.headers).json()) == 1


@pytest.mark.parametrize("role", [None, "Viewer", "Member"])
def test_bulk_delete_needs_contacts_delete(client: TestClient, minter: Minter, org1: Account, role: str | None) -> None:
    contact = create_contact(client, org1)
    user = add_member(client, org1, minter, roles=[role] if role else [])
    got = client.post("/api/contacts/bulk-delete", headers=user.headers, json={"ids": [contact["id"]]})
    assert got.status_code == 403 and got.json()["permission"] == "contacts:delete"
    assert client.get(f"/api/contacts/{contact['id']}", headers=org1.headers).status_code == 200


def test_reading_in_bulk_needs_contacts_read(client: TestClient, minter: Minter, org1: Account) -> None:
    create_contact(client, org1)
    nobody = add_member(client, org1, minter, roles=[])
    viewer = add_member(client, org1, minter, roles=["Viewer"])
    for path in ("/api/contacts", "/api/contacts/search?q=a", "/api/contacts/export.csv"):
        assert client.get(path).status_code == 401, path
        refused = client.get(path, headers=nobody.headers)
        assert refused.status_code == 403 and refused.json()["permission"] == "contacts:read", path
        assert client.get(path, headers=viewer.headers).status_code == 200, path
    assert client.post("/api/contacts/bulk-delete", json={"ids": [RANDOM_ID]}).status_code == 401
