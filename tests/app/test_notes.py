"""Notes on deals: a nested resource, found only under its own deal in the caller's organisation."""

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
    create_deal,
    create_note,
    every_operation,
)


def test_admin_writes_reads_changes_and_deletes_a_note(client: TestClient, org1: Account) -> None:
    deal = create_deal(client, org1)
    base = f"/api/deals/{deal['id']}/notes"
    note = create_note(client, org1, deal["id"], body="first call")
    assert (note["deal_id"], note["body"]) == (deal["id"], "first call")
    second = create_note(client, org1, deal["id"], body="second call")
    assert [n["id"] for n in client.get(base, headers=org1.headers).json()] == [note["id"], second["id"]]
    assert client.get(f"{base}/{note['id']}", headers=org1.headers).json() == note
    changed = client.patch(f"{base}/{note['id']}", headers=org1.headers, json={"body": "follow-up"})
    assert changed.status_code == 200 and changed.json()["body"] == "follow-up"
    assert client.delete(f"{base}/{note['id']}", headers=org1.headers).status_code == 204
    assert client.get(f"{base}/{note['id']}", headers=org1.headers).status_code == 404


def test_deleting_a_deal_deletes_its_notes(client: TestClient, org1: Account) -> None:
    deal = create_deal(client, org1)
    note = create_note(client, org1, deal["id"])
    assert client.delete(f"/api/deals/{deal['id']}", headers=org1.headers).status_code == 204
    assert client.get(f"/api/deals/{deal['id']}/notes/{note['id']}", headers=org1.headers).status_code == 404


def test_a_note_is_found_only_under_its_own_deal(client: TestClient, org1: Account) -> None:
    deal, other = create_deal(client, org1), create_deal(client, org1)
    note = create_note(client, org1, deal["id"])
    url = f"/api/deals/{other['id']}/notes/{note['id']}"
    for method, body in (("GET", None), ("PATCH", {"body": "moved?"}), ("DELETE", None)):
        got = client.request(method, url, headers=org1.headers, json=body)
        assert (got.status_code, got.json()) == (404, {"error": "not_found"}), method
    assert client.get(f"/api/deals/{other['id']}/notes", headers=org1.headers).json() == []
    assert client.get(f"/api/deals/{deal['id']}/notes/{note['id']}", headers=org1.headers).json() == note


def _every_note_operation(deal_id: str, note_id: str) -> list[Operation]:
    return every_operation(f"/api/deals/{deal_id}/notes", note_id, {"body": "x"}, {"body": "y"})


def test_another_orgs_notes_are_indistinguishable_from_missing_ones(
    client: TestClient, org1: Account, org2: Account
) -> None:
    deal = create_deal(client, org2)
    note = create_note(client, org2, deal["id"], body="canary-org2-note")
    own_deal = create_deal(client, org1)
    assert_hidden_like_missing(client, org1, _every_note_operation(deal["id"], note["id"]), deal["id"])
    # Another organisation's note under the caller's own deal: not found either.
    under_own = client.get(f"/api/deals/{own_deal['id']}/notes/{note['id']}", headers=org1.headers)
    assert (under_own.status_code, under_own.json()) == (404, {"error": "not_found"})
    assert client.get(f"/api/deals/{deal['id']}/notes/{note['id']}", headers=org2.headers).json() == note


@pytest.mark.parametrize(("role", "allowed"), ROLE_METHODS)
def test_each_role_gets_exactly_its_note_operations(
    client: TestClient, minter: Minter, org1: Account, role: str | None, allowed: set[str]
) -> None:
    user = add_member(client, org1, minter, roles=[role] if role else [])
    deal = create_deal(client, org1)
    operations = _every_note_operation(deal["id"], create_note(client, org1, deal["id"])["id"])
    assert_role_gets_exactly(client, user, operations, allowed, "notes")


def test_lacking_the_permission_beats_a_missing_deal(client: TestClient, minter: Minter, org1: Account) -> None:
    viewer = add_member(client, org1, minter, roles=["Viewer"])
    got = client.post(f"/api/deals/{RANDOM_ID}/notes", headers=viewer.headers, json={"body": "x"})
    assert got.status_code == 403
    assert client.post(f"/api/deals/{RANDOM_ID}/notes", json={"body": "x"}).status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"body": ""}, {"body": "x" * 10_001}, {"body": "a\x00b"}, {"body": "x", "deal_id": RANDOM_ID}]
)
def test_malformed_notes_are_422_and_store_nothing(client: TestClient, org1: Account, body: dict[str, Any]) -> None:
    deal = create_deal(client, org1)
    got = client.post(f"/api/deals/{deal['id']}/notes", headers=org1.headers, json=body)
    assert got.status_code == 422, got.text
    assert client.get(f"/api/deals/{deal['id']}/notes", headers=org1.headers).json() == []
