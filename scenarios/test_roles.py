"""O3: a fresh deploy has its governance roles seeded, each with permissions."""

from __future__ import annotations

import random

import pytest

from harness.clerk.issuer import Issuer, clerk_id
from harness.config.model import IdentityConfig
from harness.engine.exchange import Caller, lookup
from harness.engine.guard import GuardedTransport
from harness.report.evidence import Evidence
from harness.target.running import Target


@pytest.mark.decides("O3")
def test_fresh_deploy_has_seeded_roles(
    target: Target,
    identity: IdentityConfig,
    roles_list: str,
    issuer: Issuer,
    harness_seed: int,
    evidence: Evidence,
    transport: GuardedTransport,
) -> None:
    """A fresh deploy has every role `[roles] seeded` names, each with its permissions, as the roles API lists them."""
    roles_config = target.config.roles
    sub = clerk_id("user", random.Random(f"O3-{harness_seed}"))
    with Caller(target.base_url, issuer.mint(sub).headers, transport=transport) as caller:
        caller.call("GET", identity.me)  # first login: the caller's own workspace
        listed = caller.call("GET", roles_list)
    evidence.add(listed.line())
    assert listed.ok and isinstance(listed.json(), list), f"roles not listed: {listed.line()}  repro: {listed.curl}"
    found = {lookup(r, roles_config.name): lookup(r, roles_config.permissions) for r in listed.json()}
    for role in roles_config.seeded:
        permissions = found.get(role)
        assert role in found, f"role {role!r} is not seeded; found {sorted(map(str, found))}"
        assert isinstance(permissions, list) and permissions, f"role {role!r} has no permissions"
        evidence.add(f"{role}: {', '.join(map(str, permissions))}")
    evidence.add(f"seeded on a fresh deploy: {', '.join(roles_config.seeded)}, each with permissions")
