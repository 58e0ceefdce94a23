"""Layer 3: the PolicyEngine denies by default, explains itself, and each seeded role grants exactly its table."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import jwt
import psycopg
import pytest

from app.auth.identity import Identity, OrgRef
from app.auth.policy import Effect, PolicyEngine, Principal
from tests.app.support import ActiveOrg, Minter, TestClient, add_member, cookie_header, create_contact, sign_in

# The README's table: role -> permissions.
BUSINESS = ("contacts", "deals", "notes")
ROLE_TABLE = {
    "Admin": {"dashboard:view", "members:read", "members:manage", "roles:read"}
    | {f"{resource}:{action}" for resource in BUSINESS for action in ("read", "write", "delete")},
    "Manager": {"dashboard:view", "members:read", "members:manage", "roles:read"}
    | {f"{resource}:{action}" for resource in BUSINESS for action in ("read", "write")},
    "Member": {"dashboard:view", "roles:read"}
    | {f"{resource}:{action}" for resource in BUSINESS for action in ("read", "write")},
    "Viewer": {"dashboard:view", "roles:read"} | {f"{resource}:read" for resource in BUSINESS},
}
ALL_PERMISSIONS = sorted(ROLE_TABLE["Admin"])


def principal(grants: dict[str, tuple[str, ...]], roles: tuple[str, ...] = ()) -> Principal:
    org = OrgRef(id=uuid.uuid4(), external_id=None, name="Personal Workspace")
    return Principal(identity=Identity(uuid.uuid4(), "user_2x", org), roles=roles, grants=grants)


def test_no_grant_is_denied_by_default_and_says_so() -> None:
    decision = PolicyEngine().can_i(principal({}), "read", "contacts")
    assert decision.effect is Effect.DENY and not decision.allowed
    assert decision.permission == "contacts:read" and decision.rule == "default"
    assert decision.explain() == "deny contacts:read: no role grants it (no role); default deny"


def test_a_role_without_the_permission_is_denied() -> None:
    viewer = principal({"contacts:read": ("Viewer",)}, roles=("Viewer",))
    decision = PolicyEngine().can_i(viewer, "delete", "contacts")
    assert not decision.allowed
    assert "Viewer" in decision.reason and "default deny" in decision.reason


def test_a_granting_role_allows_and_is_named() -> None:
    member = principal({"contacts:write": ("Admin", "Member")}, roles=("Admin", "Member"))
    decision = PolicyEngine().can_i(member, "write", "contacts")
    assert decision.allowed and decision.rule == "role:Admin"
    assert decision.explain() == "allow contacts:write: granted by role Admin, Member"


def test_default_allow_allows_what_no_rule_grants() -> None:
    decision = PolicyEngine(default_allow=True).can_i(principal({}), "manage", "members")
    assert decision.allowed and decision.rule == "default" and "default allow" in decision.reason


def test_the_token_role_is_not_a_grant() -> None:
    """Only database grants count: a principal with a role name but no grants is denied."""
    assert not PolicyEngine().can_i(principal({}, roles=("Admin",)), "read", "contacts").allowed


def test_fresh_deploy_seeds_the_role_table(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter)
    roles = client.get("/api/roles", headers=admin.headers).json()
    assert {r["name"]: set(r["permissions"]) for r in roles} == ROLE_TABLE


def _probe(client: TestClient, account_headers: dict[str, str], admin_headers: dict[str, str]) -> set[str]:
    """The permissions a caller demonstrably has, each tried through the operation it guards."""
    contact = client.post("/api/contacts", headers=admin_headers, json={"name": "probe"}).json()
    deal = client.post("/api/deals", headers=admin_headers, json={"title": "probe"}).json()
    notes = f"/api/deals/{deal['id']}/notes"
    note = client.post(notes, headers=admin_headers, json={"body": "probe"}).json()
    target = client.post("/api/members", headers=admin_headers, json={"external_id": f"user_2{uuid.uuid4().hex}"})
    tries: dict[str, tuple[str, str, dict[str, object] | None]] = {
        "dashboard:view": ("GET", "/dashboard", None),
        "contacts:read": ("GET", f"/api/contacts/{contact['id']}", None),
        "contacts:write": ("PATCH", f"/api/contacts/{contact['id']}", {"notes": "x"}),
        "contacts:delete": ("DELETE", f"/api/contacts/{contact['id']}", None),
        "notes:read": ("GET", f"{notes}/{note['id']}", None),
        "notes:write": ("PATCH", f"{notes}/{note['id']}", {"body": "x"}),
        "notes:delete": ("DELETE", f"{notes}/{note['id']}", None),
        "deals:read": ("GET", f"/api/deals/{deal['id']}", None),
        "deals:write": ("PATCH", f"/api/deals/{deal['id']}", {"amount": 5}),
        "deals:delete": ("DELETE", f"/api/deals/{deal['id']}", None),
        "members:read": ("GET", "/api/members", None),
        "members:manage": ("PUT", f"/api/members/{target.json()['user_id']}/roles", {"roles": []}),
        "roles:read": ("GET", "/api/roles", None),
    }
    held = set()
    for permission, (method, path, body) in tries.items():
        if path == "/dashboard":
            token = account_headers["Authorization"].removeprefix("Bearer ")
            iat = jwt.decode(token, options={"verify_signature": False})["iat"]
            cookies = cookie_header({"__session": token, "__client_uat": str(iat)})
            got = client.get(path, headers=cookies, follow_redirects=False)
        else:
            got = client.request(method, path, headers=account_headers, json=body)
        assert got.status_code in (200, 204, 403), (permission, got.status_code, got.text)
        if got.status_code != 403:
            held.add(permission)
    return held


@pytest.mark.parametrize("role", sorted(ROLE_TABLE))
def test_each_role_can_do_exactly_what_its_permissions_say(client: TestClient, minter: Minter, role: str) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    user = add_member(client, admin, minter, roles=[role])
    assert set(user.me["permissions"]) == ROLE_TABLE[role]
    assert _probe(client, user.headers, admin.headers) == ROLE_TABLE[role]


def test_a_member_without_a_role_can_do_nothing(client: TestClient, minter: Minter) -> None:
    admin = sign_in(client, minter, org=ActiveOrg())
    create_contact(client, admin)
    nobody = add_member(client, admin, minter, roles=[])
    assert _probe(client, nobody.headers, admin.headers) == set()


def test_skip_role_seed_fault_leaves_governance_empty(
    make_client: Callable[..., TestClient], minter: Minter, database_url: str
) -> None:
    client = make_client("skip_role_seed")
    with psycopg.connect(database_url) as conn:
        for table in ("governance_roles", "governance_permissions", "governance_role_permissions"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    owner = sign_in(client, minter)
    assert owner.me["roles"] == [] and owner.me["permissions"] == []
    assert client.get("/api/roles", headers=owner.headers).status_code == 403
