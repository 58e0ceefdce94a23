"""The membership API: an admin manages the members of their own organisation, and only of it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.app.support import RANDOM_ID, ActiveOrg, Minter, TestClient, add_member, clerk_id, sign_in


def test_admin_adds_lists_changes_and_removes_a_member(client: TestClient, minter: Minter) -> None:
    org = ActiveOrg()
    admin = sign_in(client, minter, org=org)
    sub = clerk_id("user")
    added = client.post("/api/members", headers=admin.headers, json={"external_id": sub, "roles": ["Viewer"]})
    assert added.status_code == 201
    assert added.json()["external_id"] == sub and added.json()["roles"] == ["Viewer"]
    user_id = added.json()["user_id"]
    listed = {m["external_id"]: m["roles"] for m in client.get("/api/members", headers=admin.headers).json()}
    assert listed == {admin.sub: ["Admin"], sub: ["Viewer"]}

    changed = client.put(f"/api/members/{user_id}/roles", headers=admin.headers, json={"roles": ["Member", "Viewer"]})
    assert changed.status_code == 200 and changed.json()["roles"] == ["Member", "Viewer"]
    member = sign_in(client, minter, org=org, sub=sub)
    assert member.me["user"]["id"] == user_id and member.me["roles"] == ["Member", "Viewer"]

    assert client.delete(f"/api/members/{user_id}", headers=admin.headers).status_code == 204
    again = client.get("/api/me", headers=minter.headers(sub, org=org))
    assert again.status_code == 403 and again.json()["reason"] == "not_a_member"


def test_adding_an_existing_member_is_a_conflict(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    got = client.post("/api/members", headers=admin.headers, json={"external_id": admin.sub, "roles": []})
    assert got.status_code == 409 and got.json() == {"error": "already_member"}


def test_an_unknown_role_is_refused_by_name(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    got = client.post("/api/members", headers=admin.headers, json={"external_id": clerk_id("user"), "roles": ["Root"]})
    assert got.status_code == 422
    assert got.json() == {"error": "invalid_request", "reason": "unknown_role", "roles": ["Root"]}
    assert len(client.get("/api/members", headers=admin.headers).json()) == 1


def test_members_of_another_org_look_like_nobody(client: TestClient, minter: Minter) -> None:
    org1 = sign_in(client, minter, org=ActiveOrg())
    org2 = sign_in(client, minter, org=ActiveOrg())
    for user_id in (org2.user_id, RANDOM_ID):
        put = client.put(f"/api/members/{user_id}/roles", headers=org1.headers, json={"roles": ["Admin"]})
        assert (put.status_code, put.json()) == (404, {"error": "not_found"})
        gone = client.delete(f"/api/members/{user_id}", headers=org1.headers)
        assert (gone.status_code, gone.json()) == (404, {"error": "not_found"})
    assert org2.sub not in client.get("/api/members", headers=org1.headers).text
    assert sign_in(client, minter, org=org2.org, sub=org2.sub).me["roles"] == ["Admin"]


def test_only_members_managers_manage_members(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    member = add_member(client, admin, minter, roles=["Member"])
    assert client.get("/api/members", headers=member.headers).status_code == 403
    got = client.post(
        "/api/members", headers=member.headers, json={"external_id": clerk_id("user"), "roles": ["Admin"]}
    )
    assert got.status_code == 403 and got.json()["permission"] == "members:manage"
    promote = client.put(f"/api/members/{member.user_id}/roles", headers=member.headers, json={"roles": ["Admin"]})
    assert promote.status_code == 403


def test_a_member_is_read_by_user_id(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    viewer = add_member(client, admin, minter, roles=["Viewer"])
    got = client.get(f"/api/members/{viewer.user_id}", headers=admin.headers)
    assert got.status_code == 200
    assert got.json() == {"user_id": viewer.user_id, "external_id": viewer.sub, "roles": ["Viewer"]}
    assert client.get(f"/api/members/{admin.user_id}", headers=admin.headers).json()["roles"] == ["Admin"]


def test_reading_a_member_needs_members_read_and_stays_in_the_org(client: TestClient, minter: Minter) -> None:
    org1 = sign_in(client, minter, org=ActiveOrg())
    org2 = sign_in(client, minter, org=ActiveOrg())
    member = add_member(client, org1, minter, roles=["Member"])
    refused = client.get(f"/api/members/{org1.user_id}", headers=member.headers)
    assert refused.status_code == 403 and refused.json()["permission"] == "members:read"
    assert client.get(f"/api/members/{org1.user_id}").status_code == 401
    for user_id in (org2.user_id, RANDOM_ID):
        got = client.get(f"/api/members/{user_id}", headers=org1.headers)
        assert (got.status_code, got.json()) == (404, {"error": "not_found"})
    assert client.get("/api/members/not-a-uuid", headers=org1.headers).status_code == 422


def test_a_manager_hands_out_only_roles_within_its_own(client: TestClient, minter: Minter) -> None:
    """A Manager adds and changes Members and Viewers; it neither makes an Admin nor changes or removes one
    (OWASP API5): each refused with 403 `role_above_your_own`, and nothing changed."""
    org = ActiveOrg()
    admin = sign_in(client, minter, org=org)
    manager = add_member(client, admin, minter, roles=["Manager"])
    above = {"error": "forbidden", "reason": "role_above_your_own"}
    made = client.post(
        "/api/members", headers=manager.headers, json={"external_id": clerk_id("user"), "roles": ["Admin"]}
    )
    assert (made.status_code, made.json()) == (403, above)
    viewer = client.post(
        "/api/members", headers=manager.headers, json={"external_id": clerk_id("user"), "roles": ["Viewer"]}
    )
    assert viewer.status_code == 201
    viewer_id = viewer.json()["user_id"]
    promoted = client.put(f"/api/members/{viewer_id}/roles", headers=manager.headers, json={"roles": ["Admin"]})
    assert (promoted.status_code, promoted.json()) == (403, above)
    moved = client.put(f"/api/members/{viewer_id}/roles", headers=manager.headers, json={"roles": ["Member"]})
    assert moved.status_code == 200 and moved.json()["roles"] == ["Member"]
    demoted = client.put(f"/api/members/{admin.user_id}/roles", headers=manager.headers, json={"roles": ["Viewer"]})
    assert (demoted.status_code, demoted.json()) == (403, above)
    removed = client.delete(f"/api/members/{admin.user_id}", headers=manager.headers)
    assert (removed.status_code, removed.json()) == (403, above)
    listed = {m["external_id"]: m["roles"] for m in client.get("/api/members", headers=admin.headers).json()}
    assert listed[admin.sub] == ["Admin"] and sorted(listed.values()) == [["Admin"], ["Manager"], ["Member"]]
    assert client.delete(f"/api/members/{viewer_id}", headers=manager.headers).status_code == 204


def test_the_last_member_manager_can_neither_step_down_nor_be_removed(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    """The sole holder of `members:manage` keeps it (409 `last_member_manager`, nothing changed); once a second
    Admin is there, either may go. With `last_admin_removable` the sole Admin demotes themselves."""
    client = make_client()
    admin = sign_in(client, minter, org=ActiveOrg())
    last = {"error": "conflict", "reason": "last_member_manager"}
    for method, path, body in (
        ("PUT", f"/api/members/{admin.user_id}/roles", {"roles": ["Member"]}),
        ("PUT", f"/api/members/{admin.user_id}/roles", {"roles": []}),
        ("DELETE", f"/api/members/{admin.user_id}", None),
    ):
        got = client.request(method, path, headers=admin.headers, json=body)
        assert (got.status_code, got.json()) == (409, last), (method, body)
    assert client.get("/api/me", headers=admin.headers).json()["roles"] == ["Admin"]
    assert (
        client.put(
            f"/api/members/{admin.user_id}/roles", headers=admin.headers, json={"roles": ["Admin", "Viewer"]}
        ).status_code
        == 200
    )
    second = add_member(client, admin, minter, roles=["Admin"])
    assert (
        client.put(f"/api/members/{admin.user_id}/roles", headers=admin.headers, json={"roles": ["Viewer"]}).status_code
        == 200
    )
    got = client.delete(f"/api/members/{second.user_id}", headers=second.headers)  # now the last one again
    assert (got.status_code, got.json()) == (409, last)

    faulty = make_client("last_admin_removable")
    sole = sign_in(faulty, minter, org=ActiveOrg())
    assert faulty.put(f"/api/members/{sole.user_id}/roles", headers=sole.headers, json={"roles": []}).status_code == 200
    assert faulty.get("/api/me", headers=sole.headers).json()["roles"] == []


def test_two_admins_stepping_down_at_once_leave_one(make_client: Callable[..., TestClient], minter: Minter) -> None:
    client = make_client()
    first = sign_in(client, minter, org=ActiveOrg())
    second = add_member(client, first, minter, roles=["Admin"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(
                lambda who: client.put(f"/api/members/{who.user_id}/roles", headers=who.headers, json={"roles": []}),
                (first, second),
            )
        )
    assert sorted(a.status_code for a in answers) == [200, 409]
    roles = {
        m["external_id"]: m["roles"]
        for m in client.get("/api/members", headers=(first if answers[1].status_code == 200 else second).headers).json()
    }
    assert sorted(roles.values()) == [[], ["Admin"]]
