"""M4 across a switch of the active organisation, proven in-process on a small Clerk-guarded API unlike the
reference app (integer organisation ids, records keyed by short slugs), with the ways such an API gets it wrong."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from harness.checks.findings import FindingKind
from harness.checks.switching import active_org_switch
from harness.clerk.issuer import ActiveOrg, Issuer
from harness.engine.world import Canary, ClerkCredentials, Org, Principal, World
from tests.harness.clerk_fake import fake_clerk_target

FLAWS = ("org_per_session", "org_per_user", "any_membership_reads", "switch_locks_out")


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    """An issuer of this module's own (the plugin's would start the reference app)."""
    return Issuer(
        issuer_url="https://iam-harness-12.clerk.accounts.dev", authorized_party="http://app.test", rng=random.Random(5)
    )


@dataclass
class Switchboard:
    """Organisations keyed by Clerk id (the app's own ids are integers), memberships, and records by slug."""

    issuer: Issuer
    flaws: frozenset[str] = frozenset()
    orgs: dict[str, int] = field(default_factory=dict)  # Clerk org id -> the app's id
    members: dict[tuple[str, int], str] = field(default_factory=dict)  # (sub, org) -> role
    records: dict[str, tuple[int, str]] = field(default_factory=dict)  # slug -> (org, name)
    remembered: dict[str, str] = field(default_factory=dict)  # the flaws' memory: sid or sub -> Clerk org id

    def active(self, request: httpx.Request) -> tuple[str, int] | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.issuer.keys[-1][1].public_key(), algorithms=["RS256"])
        except jwt.PyJWTError:
            return None
        clerk_org = str(claims.get("o", {}).get("id", ""))
        if "org_per_session" in self.flaws:
            clerk_org = self.remembered.setdefault(claims["sid"], clerk_org)
        if "org_per_user" in self.flaws:
            clerk_org = self.remembered.setdefault(claims["sub"], clerk_org)
        org = self.orgs.get(clerk_org)
        if org is None or (claims["sub"], org) not in self.members:
            return None
        return claims["sub"], org

    def handle(self, request: httpx.Request) -> httpx.Response:
        caller = self.active(request)
        if caller is None:
            return httpx.Response(401, json={"detail": "sign in"})
        sub, org = caller
        if request.url.path == "/api/me":
            return httpx.Response(200, json={"user": {"id": sub}, "organisation": {"id": org}})
        if request.url.path == "/api/members" and request.method == "POST":
            body = json.loads(request.content)
            self.members[(body["external_id"], org)] = body["roles"][0]
            return httpx.Response(201, json={})
        slug = request.url.path.removeprefix("/api/contacts/")
        owner, name = self.records.get(slug, (None, ""))
        mine = owner == org or ("any_membership_reads" in self.flaws and (sub, owner) in self.members)
        if "switch_locks_out" in self.flaws and len({o for s, o in self.members if s == sub}) > 1 and owner != 1:
            mine = False  # a user in two organisations is refused everything but the first one's records
        if not mine:
            return httpx.Response(404, json={"detail": "no such contact"})
        return httpx.Response(200, json={"slug": slug, "name": name})


def _world(issuer: Issuer, board: Switchboard) -> World:
    world = World(orgs={})
    for n in (1, 2):
        claim = ActiveOrg(f"org_2switch{n}000000000000000000", f"org-{n}", "admin")
        owner = ClerkCredentials(issuer, f"user_2owner{n}0000000000000000000", claim)
        board.orgs[claim.id] = n
        board.members[(owner.sub, n)] = "Admin"
        org = Org(key=f"org{n}", principals=[Principal(f"org{n} admin", f"org{n}", "Admin", owner)], id=str(n))
        for k in range(2):
            slug, marker = f"c{n}{k}", f"canaryorg{n}x{k:012x}"
            board.records[slug] = (n, marker)
            org.canaries.append(Canary(org.key, "contacts", marker, slug, f"/api/contacts/{slug}", {}))
        world.orgs[org.key] = org
    return world


def _switch(tmp_path: Path, issuer: Issuer, flaws: frozenset[str] = frozenset()) -> tuple[Any, Switchboard]:
    board = Switchboard(issuer, flaws)
    world = _world(issuer, board)
    target = fake_clerk_target(tmp_path, issuer)
    judged = active_org_switch(target, world, issuer, random.Random(7), {}, httpx.MockTransport(board.handle))
    return judged, board


def test_a_secure_switch_is_clean_and_says_what_it_saw(tmp_path: Path, issuer: Issuer) -> None:
    judged, board = _switch(tmp_path, issuer)
    assert judged.ok, judged.findings
    assert judged.checks == ("M4",)
    two = [sub for sub, org in board.members if org == 2 and (sub, 1) in board.members]
    assert len(two) == 1 and board.members[(two[0], 2)] == "Admin"  # added to both, with the admin role
    assert sum("saw only its own" in line for line in judged.evidence) == 3  # org1, org2, org1 again


@pytest.mark.parametrize(
    ("flaw", "kinds"),
    [
        ("org_per_session", {FindingKind.STALE_ACTIVE_ORG, FindingKind.CROSS_ORG_READ}),
        ("org_per_user", {FindingKind.STALE_ACTIVE_ORG, FindingKind.CROSS_ORG_READ}),
        ("any_membership_reads", {FindingKind.CROSS_ORG_READ}),
        ("switch_locks_out", {FindingKind.STALE_ACTIVE_ORG}),
    ],
)
def test_each_way_of_getting_the_switch_wrong_is_found(
    tmp_path: Path, issuer: Issuer, flaw: str, kinds: set[FindingKind]
) -> None:
    judged, _ = _switch(tmp_path, issuer, frozenset({flaw}))
    assert {f.kind for f in judged.findings} == kinds, judged.findings
    assert all(f.checks == ("M4",) and f.principal.startswith("two-org user") for f in judged.findings)


def test_a_session_remembered_by_its_id_is_caught_at_the_first_switch(tmp_path: Path, issuer: Issuer) -> None:
    judged, _ = _switch(tmp_path, issuer, frozenset({"org_per_session"}))
    stale = next(f for f in judged.findings if f.kind is FindingKind.STALE_ACTIVE_ORG)
    assert stale.principal == "two-org user, org2 active"
    assert "naming organisation '1', not '2'" in stale.detail


def test_without_a_second_clerk_organisation_it_decides_nothing(tmp_path: Path, issuer: Issuer) -> None:
    board = Switchboard(issuer)
    world = _world(issuer, board)
    target = fake_clerk_target(tmp_path, issuer)
    alone = World(orgs={"org1": world.org("org1")})
    judged = active_org_switch(target, alone, issuer, random.Random(7), {}, httpx.MockTransport(board.handle))
    assert judged.ok and judged.inapplicable == "no two organisations whose owners present Clerk sessions"
    assert len(board.members) == 2  # the two owners: nobody was added


def test_an_owner_who_cannot_add_the_user_is_a_finding_never_a_pass(tmp_path: Path, issuer: Issuer) -> None:
    board = Switchboard(issuer)
    world = _world(issuer, board)
    refusing = httpx.MockTransport(lambda r: httpx.Response(403) if r.url.path == "/api/members" else board.handle(r))
    judged = active_org_switch(fake_clerk_target(tmp_path, issuer), world, issuer, random.Random(7), {}, refusing)
    assert [f.kind for f in judged.findings] == [FindingKind.NOT_EXERCISED]
    assert "could not add a user to org1" in judged.findings[0].detail
