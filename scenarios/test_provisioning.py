"""M2, O1, I1 and I2: a brand-new user's first request provisions them, once, whole, with the right role, without
errors; Clerk's organisation sync makes one organisation per Clerk organisation."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping

import pytest

from harness.checks.provisioning import first_logins
from harness.checks.sync import organisation_sync
from harness.checks.together import Footprint
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.config.model import IdentityConfig
from harness.database.traces import rows_naming
from harness.engine.exchange import Caller, Exchange, leaks_in, lookup
from harness.engine.guard import GuardedTransport
from harness.report.evidence import Evidence, conclude
from harness.target.running import Target


def _first_login(
    target: Target,
    identity: IdentityConfig,
    issuer: Issuer,
    sub: str,
    org: ActiveOrg | None,
    transport: GuardedTransport,
) -> Exchange:
    with Caller(target.base_url, issuer.mint(sub, org=org).headers, name=sub, transport=transport) as caller:
        return caller.call("GET", identity.me)


@pytest.mark.decides("M2")
def test_first_user_of_a_new_org_is_admin(
    target: Target,
    identity: IdentityConfig,
    issuer: Issuer,
    harness_seed: int,
    evidence: Evidence,
    transport: GuardedTransport,
) -> None:
    """A brand-new user's first request lands in their Personal Workspace as Admin, as does a new org's first user."""
    rng = random.Random(f"M2-{harness_seed}")
    personal = _first_login(target, identity, issuer, clerk_id("user", rng), None, transport)
    evidence.add(personal.line())
    assert personal.ok, f"first request failed: {personal.line()}  repro: {personal.curl}"
    name = lookup(personal.json(), identity.org_name)
    roles = lookup(personal.json(), identity.roles)
    assert name == identity.personal_org_name, f"landed in {name!r}, not {identity.personal_org_name!r}"
    assert isinstance(roles, list) and identity.admin_role in roles, (
        f"first user of the new {name!r} has roles {roles!r}, not {identity.admin_role}  repro: {personal.curl}"
    )
    named = _first_login(
        target, identity, issuer, clerk_id("user", rng), ActiveOrg(clerk_id("org", rng), "m2-new-org"), transport
    )
    evidence.add(named.line())
    roles = lookup(named.json(), identity.roles)
    assert named.ok and isinstance(roles, list) and identity.admin_role in roles, (
        f"first user of a new Clerk organisation has roles {roles!r}: {named.line()}  repro: {named.curl}"
    )
    evidence.add(f"both first users are {identity.admin_role} of their new organisation")


@pytest.mark.decides("O1")
def test_first_login_with_clerk_ids_resolves_roles(
    target: Target,
    identity: IdentityConfig,
    issuer: Issuer,
    harness_seed: int,
    evidence: Evidence,
    transport: GuardedTransport,
) -> None:
    """First logins with Clerk-shaped ids (`user_2...`, `org_2...`) resolve identity and roles: no 5xx, no SQL text."""
    rng = random.Random(f"O1-{harness_seed}")
    problems = []
    for org in (None, ActiveOrg(clerk_id("org", rng), "o1-org")):
        sub = clerk_id("user", rng)
        with Caller(target.base_url, issuer.mint(sub, org=org).headers, name=sub, transport=transport) as caller:
            for path in (
                identity.me,
                identity.me,
                *([target.config.roles.list] if target.config.roles.list else []),
            ):  # first login, then a return visit
                seen = caller.call("GET", path)
                evidence.add(f"{sub} ({'org ' + org.id if org else 'no org claim'}): {seen.line()}")
                if seen.status >= 500:
                    problems.append(f"{seen.line()}  repro: {seen.curl}")
                if leaks := leaks_in(seen.text):
                    problems.append(f"{seen.method} {seen.url} shows {leaks}")
                if path == identity.me and not isinstance(lookup(seen.json(), identity.roles), list):
                    problems.append(f"roles not resolved for {sub}: {seen.line()}")
                if path == identity.me and lookup(seen.json(), identity.user_id) is None:
                    problems.append(f"identity not resolved for {sub}: {seen.line()}")
    assert not problems, "; ".join(problems)
    evidence.add("two first logins with Clerk-shaped ids resolved identity and roles; no 5xx, no SQL text")


def _footprint(target: Target) -> Footprint | None:
    """Per table, the rows holding some ids, where the harness may read the database; append-only tables (audit
    logs, which grow with every request) are left out."""
    url, database = target.database_url, target.config.database
    if url is None:
        return None
    skipped = database.append_only if database else frozenset()

    def rows(values: Collection[str]) -> Mapping[str, int]:
        return {table: count for table, count in rows_naming(url, values).items() if table not in skipped}

    return rows


@pytest.mark.decides("I1")
def test_first_logins_provision_once_and_whole(
    target: Target, issuer: Issuer, harness_seed: int, evidence: Evidence, transport: GuardedTransport
) -> None:
    """Racing first requests of one new user make exactly one user, one organisation and one admin grant, every
    answer 2xx; a first login failing midway leaves nothing, and the next one provisions cleanly."""
    rng = random.Random(f"I1-{harness_seed}")
    footprint = _footprint(target)
    if footprint is None:
        evidence.add("the harness may not read the target's database: judged through the API alone")
    conclude(first_logins(target, issuer, rng, transport, footprint), evidence)


@pytest.mark.decides("I2")
def test_clerk_organisation_sync_makes_one_organisation_each(
    target: Target, issuer: Issuer, harness_seed: int, evidence: Evidence, transport: GuardedTransport
) -> None:
    """A story told through Clerk's webhooks as Clerk delivers them (duplicates, replays at once, any order, a first
    login racing its organisation, forgeries): every member ends where Clerk has them, one organisation each."""
    rng = random.Random(f"I2-{harness_seed}")
    footprint = _footprint(target)
    conclude(organisation_sync(target, issuer, rng, transport, footprint), evidence)
