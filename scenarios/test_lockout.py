"""C3: no lockout. An organisation's only member manager can neither remove itself nor give up its role."""

from __future__ import annotations

import random

import pytest

from harness.checks.lockout import last_manager_stays
from harness.clerk.issuer import Issuer
from harness.config.placeholders import run_values
from harness.engine.guard import GuardedTransport
from harness.report.evidence import Evidence, conclude
from harness.target.running import Target


@pytest.mark.decides("C3")
def test_the_last_member_manager_stays(
    target: Target, issuer: Issuer, harness_seed: int, transport: GuardedTransport, evidence: Evidence
) -> None:
    """On a new organisation of its own, the admin adds, changes and removes a member (the control), then tries to
    remove itself and to take its own admin role away: each refused, and it stays the admin."""
    rng = random.Random(f"C3-{harness_seed}")
    conclude(last_manager_stays(target, issuer, rng, run_values(harness_seed), transport), evidence)
