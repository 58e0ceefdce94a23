"""Deals: permissions per operation, org scoping (404, never a hint), and the deal -> contact reference check."""

from __future__ import annotations

from typing import Any

import pytest

from tests.app.support import (
    RANDOM_ID,
    ROLE_METHODS,
    Account,
    Minter,
    Operation,
    TestClient,
    add_member,
    assert_hidden_like_missing,
    assert_role_gets_exactly,
    create_contact,
    create_deal,
    every_operation,
)


def test_admin_creates_reads_changes_and_deletes_a_deal(client: TestClient, org1: Account) -> None:
    contact = create_contact(client, org1, name="Ada")
    deal = create_deal(client, org1, title="Renewal", amount=1200, contact_id=contact["id"])
    assert (deal["title"], deal["amount"], deal["contact_id"], deal["contact_name"]) == (
        "Renewal",
        1200,
        contact["id"],
        "Ada",
    )
    url = f"/api/deals/{deal['id']}"
    assert client.get(url, headers=org1.headers).json() == deal
    changed = client.patch(url, headers=org1.headers, json={"amount": 1500, "contact_id": None})
    assert changed.status_code == 200
    body = changed.json()
    assert (body["amount"], body["title"], body["contact_id"], body["contact_name"]) == (1500, "Renewal", None, None)
    listed = client.get("/api/deals", headers=org1.headers)
    assert [d["id"] for d in listed.json()] == [deal["id"]] and listed.headers["x-total-count"] == "1"
    assert client.delete(url, headers=org1.headers).status_code == 204
    assert client.get(url, headers=org1.headers).status_code == 404


def test_deals_are_paged(client: TestClient, org1: Account) -> None:
    made = [create_deal(client, org1, title=f"d{i}")["id"] for i in range(3)]
    page = client.get("/api/deals", headers=org1.headers, params={"limit": 2, "offset": 1})
    assert [d["id"] for d in page.json()] == made[1:] and page.headers["x-total-count"] == "3"
    assert client.get("/api/deals", headers=org1.headers, params={"limit": 101}).status_code == 422


def test_a_contact_name_follows_the_contact(client: TestClient, org1: Account) -> None:
    contact = create_contact(client, org1, name="Before")
    deal = create_deal(client, org1, contact_id=contact["id"])
    client.patch(f"/api/contacts/{contact['id']}", headers=org1.headers, json={"name": "After"})
    assert client.get(f"/api/deals/{deal['id']}", headers=org1.headers).json()["contact_name"] == "After"
    assert client.delete(f"/api/contacts/{contact['id']}", headers=org1.headers).status_code == 204
    unlinked = client.get(f"/api/deals/{deal['id']}", headers=org1.headers).json()
    assert (unlinked["contact_id"], unlinked["contact_name"]) == (None, None)


def test_another_orgs_contact_is_refused_like_a_missing_one(client: TestClient, org1: Account, org2: Account) -> None:
    foreign = create_contact(client, org2, name="canary-org2-contact")
    answers = [
        client.post("/api/deals", headers=org1.headers, json={"title": "t", "contact_id": contact_id})
        for contact_id in (foreign["id"], RANDOM_ID)
    ]
    for got in answers:
        assert got.status_code == 422
        assert got.json() == {
            "error": "invalid_request",
            "detail": [{"loc": ["body", "contact_id"], "msg": "no such contact", "type": "unknown_reference"}],
        }
    assert client.get("/api/deals", headers=org1.headers).json() == []


def test_a_deal_cannot_be_pointed_at_another_orgs_contact(client: TestClient, org1: Account, org2: Account) -> None:
    foreign = create_contact(client, org2, name="canary-org2-contact")
    deal = create_deal(client, org1)
    for contact_id in (foreign["id"], RANDOM_ID):
        got = client.patch(f"/api/deals/{deal['id']}", headers=org1.headers, json={"contact_id": contact_id})
        assert got.status_code == 422 and "canary" not in got.text
    assert client.get(f"/api/deals/{deal['id']}", headers=org1.headers).json() == deal


def _every_deal_operation(deal_id: str) -> list[Operation]:
    return every_operation("/api/deals", deal_id, {"title": "x"}, {"title": "y"})


def test_another_orgs_deal_is_indistinguishable_from_a_missing_one(
    client: TestClient, org1: Account, org2: Account
) -> None:
    foreign = create_deal(client, org2, title="canary-org2-deal")
    assert_hidden_like_missing(client, org1, _every_deal_operation(foreign["id"])[2:], foreign["id"])
    assert "canary-org2-deal" not in client.get("/api/deals", headers=org1.headers).text
    assert client.get(f"/api/deals/{foreign['id']}", headers=org2.headers).json() == foreign


@pytest.mark.parametrize(("role", "allowed"), ROLE_METHODS)
def test_each_role_gets_exactly_its_deal_operations(
    client: TestClient, minter: Minter, org1: Account, role: str | None, allowed: set[str]
) -> None:
    user = add_member(client, org1, minter, roles=[role] if role else [])
    assert_role_gets_exactly(client, user, _every_deal_operation(create_deal(client, org1)["id"]), allowed, "deals")


def test_refusals_come_in_order_for_deals(client: TestClient, minter: Minter, org1: Account) -> None:
    viewer = add_member(client, org1, minter, roles=["Viewer"])
    own = create_deal(client, org1)
    bad = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    assert client.patch(f"/api/deals/{own['id']}", **bad).status_code == 401
    forbidden = client.patch(
        f"/api/deals/{RANDOM_ID}", content=b"{", headers={**viewer.headers, "Content-Type": "application/json"}
    )
    assert forbidden.status_code == 403
    missing = client.patch(
        f"/api/deals/{RANDOM_ID}", content=b"{", headers={**org1.headers, "Content-Type": "application/json"}
    )
    assert missing.status_code == 404
    assert client.get("/api/deals/not-a-uuid", headers=org1.headers).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "x", "amount": -1},
        {"title": "x", "amount": "10"},
        {"title": "x", "amount": 1.5},
        {"title": "x", "amount": 10**13},
        {"title": "x", "contact_id": "not-a-uuid"},
        {"title": "x", "org_id": RANDOM_ID},
    ],
    ids=["empty", "blank", "negative", "string-amount", "fraction", "huge", "bad-contact-id", "org-id"],
)
def test_malformed_deals_are_422_and_store_nothing(client: TestClient, org1: Account, body: dict[str, Any]) -> None:
    got = client.post("/api/deals", headers=org1.headers, json=body)
    assert got.status_code == 422, got.text
    assert client.get("/api/deals", headers=org1.headers).json() == []


def test_patch_refuses_a_null_title_or_amount(client: TestClient, org1: Account) -> None:
    deal = create_deal(client, org1, amount=7)
    for body in ({"title": None}, {"amount": None}):
        assert client.patch(f"/api/deals/{deal['id']}", headers=org1.headers, json=body).status_code == 422
    assert client.get(f"/api/deals/{deal['id']}", headers=org1.headers).json() == deal
