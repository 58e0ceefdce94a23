"""The business API: permissions per operation, org scoping (404, never a hint), and the order of refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.app.support import (
    RANDOM_ID,
    Account,
    ActiveOrg,
    Minter,
    Operation,
    TestClient,
    add_member,
    assert_hidden_like_missing,
    create_contact,
    every_operation,
    sign_in,
)


def test_admin_creates_reads_changes_and_deletes_a_contact(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    contact = create_contact(client, admin)
    assert contact["name"] == "Ada Lovelace" and contact["email"] == "ada@example.org"
    url = f"/api/contacts/{contact['id']}"
    assert client.get(url, headers=admin.headers).json() == contact
    changed = client.patch(url, headers=admin.headers, json={"notes": "met at the conference"})
    assert changed.status_code == 200
    assert changed.json()["notes"] == "met at the conference" and changed.json()["name"] == "Ada Lovelace"
    assert [c["id"] for c in client.get("/api/contacts", headers=admin.headers).json()] == [contact["id"]]
    deleted = client.delete(url, headers=admin.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(url, headers=admin.headers).status_code == 404


def _every_contact_operation(contact_id: str) -> list[Operation]:
    return every_operation("/api/contacts", contact_id, {"name": "x"}, {"name": "y"})


def test_a_member_without_a_role_is_refused_every_contact_operation(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    contact = create_contact(client, admin)
    nobody = add_member(client, admin, minter, roles=[])
    for method, path, body in _every_contact_operation(contact["id"]):
        got = client.request(method, path, headers=nobody.headers, json=body)
        assert got.status_code == 403, (method, path, got.text)
        assert got.json()["error"] == "forbidden" and got.json()["reason"] == "missing_permission"
    assert client.get(f"/api/contacts/{contact['id']}", headers=admin.headers).json() == contact


@pytest.fixture
def two_orgs(client: TestClient, minter: Minter) -> tuple[Account, Account, dict[str, str]]:
    org1 = sign_in(client, minter, org=ActiveOrg(slug="org-one"))
    org2 = sign_in(client, minter, org=ActiveOrg(slug="org-two"))
    return org1, org2, create_contact(client, org2, name="canary-org2-7f3a")


def test_another_orgs_contact_is_indistinguishable_from_a_missing_one(
    client: TestClient, two_orgs: tuple[Account, Account, dict[str, str]]
) -> None:
    org1, org2, foreign = two_orgs
    assert_hidden_like_missing(client, org1, _every_contact_operation(foreign["id"])[2:], foreign["id"])
    assert "canary-org2-7f3a" not in client.get("/api/contacts", headers=org1.headers).text
    assert client.get(f"/api/contacts/{foreign['id']}", headers=org2.headers).json() == foreign


def test_default_allow_fault_lets_a_member_without_a_role_read(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    client = make_client("default_allow")
    admin = sign_in(client, minter, org=ActiveOrg())
    create_contact(client, admin)
    nobody = add_member(client, admin, minter, roles=[])
    assert nobody.me["roles"] == []
    got = client.get("/api/contacts", headers=nobody.headers)
    assert got.status_code == 200 and len(got.json()) == 1


def test_refusals_come_in_order_401_403_404_422(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    viewer = add_member(client, admin, minter, roles=["Viewer"])
    own = create_contact(client, admin)
    bad_json = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    # Not signed in beats everything, a malformed body included.
    assert client.post("/api/contacts", **bad_json).status_code == 401
    assert client.patch("/api/contacts/not-a-uuid", **bad_json).status_code == 401
    # Lacking the permission beats a malformed body or id.
    forbidden = client.patch(
        f"/api/contacts/{own['id']}",
        content=b"{not json",
        headers={**viewer.headers, "Content-Type": "application/json"},
    )
    assert forbidden.status_code == 403
    assert client.patch("/api/contacts/not-a-uuid", headers=viewer.headers, json={}).status_code == 403
    # Not found beats a malformed body.
    missing = client.patch(
        f"/api/contacts/{RANDOM_ID}",
        content=b"{not json",
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert missing.status_code == 404
    # Only then is the request itself judged.
    assert client.get("/api/contacts/not-a-uuid", headers=admin.headers).status_code == 422
    bad = client.patch(
        f"/api/contacts/{own['id']}",
        content=b"{not json",
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": "nul\x00byte"},
        {"name": "x", "email": "not-an-email"},
        {"name": "x", "org_id": "00000000-0000-4000-8000-000000000000"},
        {"name": 42},
        [],
    ],
    ids=["empty", "blank-name", "long-name", "nul", "bad-email", "extra-field", "number", "array"],
)
def test_malformed_bodies_are_422_and_store_nothing(client: TestClient, minter: Minter, body: object) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    got = client.post("/api/contacts", headers=admin.headers, json=body)
    assert got.status_code == 422, got.text
    assert got.json()["error"] == "invalid_request"
    assert client.get("/api/contacts", headers=admin.headers).json() == []


def test_patch_refuses_a_null_name(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    contact = create_contact(client, admin)
    got = client.patch(f"/api/contacts/{contact['id']}", headers=admin.headers, json={"name": None})
    assert got.status_code == 422
    assert client.get(f"/api/contacts/{contact['id']}", headers=admin.headers).json()["name"] == "Ada Lovelace"
