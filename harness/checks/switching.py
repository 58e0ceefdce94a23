"""M4 across a switch of the active organisation: one user, a member of two organisations, sees only the active one.

A fresh Clerk user is added to both organisations by their owners (through the target's members API, with the
admin role, so that nothing is refused for want of a permission). One session (`sid`) then switches its active
organisation org1 -> org2 -> org1, as Clerk's `setActive` does: each time, who-am-I must name the active one, its
records must be readable and the other's must not. An app that remembers a session's organisation, or caches it
by user, is caught by the first switch. The user stays a member of both afterwards (a target's API may offer no way
to remove one); it is nobody the other scenarios know of, and its records are none.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.config.model import IdentityConfig
from harness.engine.exchange import Caller, lookup
from harness.engine.planting import add_member, id_text
from harness.engine.world import ClerkCredentials, Org, World
from harness.target.running import Target

__all__ = ["SWITCHES", "TwoOrgUser", "active_org_switch", "member_of_both"]

SWITCHES = ("org1", "org2", "org1")  # the organisations made active, in turn, in one session


@dataclass(frozen=True)
class TwoOrgUser:
    """A user in both organisations: one session's credentials per organisation it may make active."""

    sub: str
    sid: str
    sessions: Mapping[str, ClerkCredentials]  # org key -> the session with that organisation active


def member_of_both(
    target: Target,
    world: World,
    issuer: Issuer,
    rng: random.Random,
    run: Mapping[str, str],
    judged: Judged,
    transport: httpx.BaseTransport | None,
) -> TwoOrgUser | None:
    """A new user added to org1 and org2 by their owners; None (with the reason in `judged`) when the target
    cannot have one or an owner could not add them."""
    members, admin = target.config.members, target.config.admin_role
    orgs = [world.orgs.get(key) for key in SWITCHES[:2]]
    claims = [_claim(org) for org in orgs]
    if members is None or admin is None:
        judged.cannot_apply("the config has no [members]: nobody can be added to a second organisation")
        return None
    if any(claim is None for claim in claims):
        judged.cannot_apply("no two organisations whose owners present Clerk sessions")
        return None
    sub, sid = clerk_id("user", rng), clerk_id("sess", rng)
    sessions: dict[str, ClerkCredentials] = {}
    for org, claim in zip(orgs, claims, strict=True):
        assert org is not None and claim is not None
        with org.owner.caller(target.base_url, transport) as owner:
            added = add_member(owner, members, sub, admin, run)
        operation = f"{members.add.method} {members.add.path}"
        if judged.unanswered(added, operation, org.owner.name):
            return None
        if not added.ok:
            judged.not_exercised(operation, org.owner.name, f"could not add a user to {org.key}: {added.line()}", added)
            return None
        sessions[org.key] = ClerkCredentials(issuer, sub, ActiveOrg(claim.id, claim.slug, admin.lower()), sid=sid)
    judged.add(f"user {sub} added to org1 and org2 as {admin}; one session {sid} switches org1 -> org2 -> org1")
    return TwoOrgUser(sub, sid, sessions)


def _claim(org: Org | None) -> ActiveOrg | None:
    if org is None or not org.principals or not isinstance(org.owner.credentials, ClerkCredentials):
        return None
    return org.owner.credentials.org


def active_org_switch(
    target: Target,
    world: World,
    issuer: Issuer,
    rng: random.Random,
    run: Mapping[str, str],
    transport: httpx.BaseTransport | None,
) -> Judged:
    """Switch one session's active organisation org1 -> org2 -> org1: each time, who-am-I names the active one,
    its records read back with their markers, the other's are refused and show nothing."""
    judged = Judged(("M4",))
    identity = target.config.identity
    if identity is None:
        return judged.cannot_apply("the config has no [identity]: nothing says which organisation is active")
    user = member_of_both(target, world, issuer, rng, run, judged, transport)
    if user is None:
        return judged
    for turn, key in enumerate(SWITCHES):
        with Caller(target.base_url, name=f"two-org user, {key} active", transport=transport) as caller:
            _turn(judged, caller, identity, world, key, user.sessions[key], switched=turn > 0)
    return judged


def _turn(
    judged: Judged,
    caller: Caller,
    identity: IdentityConfig,
    world: World,
    key: str,
    session: ClerkCredentials,
    *,
    switched: bool,
) -> None:
    """One stretch with `key` active: who-am-I names it, its records read back, the other's are refused."""
    active, other = world.org(key), world.org("org2" if key == "org1" else "org1")
    # Before any switch a failure is the target's own (its admin cannot work); after one, a stale session.
    wrong = FindingKind.STALE_ACTIVE_ORG if switched else FindingKind.NEVER_SUCCEEDED
    label = f"{key} active" + (" (switched)" if switched else "")
    before = len(judged.findings)
    me = caller.call("GET", identity.me, headers=session.headers())
    operation = f"GET {identity.me}"
    if active.id is None:  # the world never learnt it: who-am-I cannot be held to it
        judged.not_exercised(operation, caller.name, f"{key}'s own id is unknown: {world.incomplete()}")
    elif not judged.unanswered(me, operation, caller.name):
        named = id_text(lookup(me.json(), identity.org_id)) if me.ok else None
        if named != active.id:
            detail = f"with {key} active it answered {me.status} naming organisation {named!r}, not {active.id!r}"
            judged.find(wrong, operation, caller.name, detail, me)
    answered = 0
    for canary in active.canaries:
        seen = caller.call("GET", canary.read_path, headers=session.headers())
        if judged.unanswered(seen, f"GET {canary.read_path}", caller.name):
            continue
        answered += 1
        if not seen.ok or canary.marker not in seen.text:
            detail = f"its own {canary.resource} record {canary.id} answered {seen.status} with {key} active"
            judged.find(wrong, f"GET {canary.read_path}", caller.name, detail, seen)
    for canary in other.canaries:
        seen = caller.call("GET", canary.read_path, headers=session.headers())
        if judged.unanswered(seen, f"GET {canary.read_path}", caller.name):
            continue
        answered += 1
        if seen.ok or canary.marker in seen.text:
            kind = FindingKind.CROSS_ORG_READ if seen.ok else FindingKind.FOREIGN_MARKER
            detail = f"{other.key}'s {canary.resource} record {canary.id} answered {seen.status} with {key} active"
            judged.find(kind, f"GET {canary.read_path}", caller.name, detail, seen)
    found = len(judged.findings) - before
    judged.add(
        f"{label}: {operation} {me.status}; {answered} of {len(active.canaries) + len(other.canaries)} reads of its "
        f"records and {other.key}'s answered: "
        + (f"{found} finding(s)" if found else "it named the active one and saw only its own")
    )
