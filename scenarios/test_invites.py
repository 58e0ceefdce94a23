"""O5: invites by email, read from the mail the target really sends, accepted as the invitee and as others."""

from __future__ import annotations

import random

import pytest

from harness.checks.invites import invite_flow
from harness.clerk.issuer import Issuer
from harness.config.placeholders import run_values
from harness.engine.guard import GuardedTransport
from harness.engine.world import World
from harness.report.evidence import Evidence, conclude
from harness.target.running import Target


@pytest.mark.decides("O5")
def test_an_invite_lets_in_its_address_once_before_it_expires(
    target: Target, world: World, issuer: Issuer, harness_seed: int, transport: GuardedTransport, evidence: Evidence
) -> None:
    """The invited address joins with the invited role; another address, a second use, 16 accepts at once, an
    expired or revoked invite, a member's invite and an invite into another organisation let nobody in."""
    assert not world.problems, world.incomplete()
    rng = random.Random(f"O5-{harness_seed}")
    conclude(invite_flow(target, world, issuer, rng, run_values(harness_seed), transport), evidence)
