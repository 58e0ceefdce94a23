"""M3 and O4: default deny on every operation the schema lists."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.world import World
from harness.evidence import Evidence
from harness.http import Caller
from harness.issuer import Issuer
from harness.openapi import Operation, example_body, fill_path, operations
from harness.target import Target

RANDOM_ID = "00000000-0000-4000-8000-000000000001"


def _probe(caller: Caller, schema: dict[str, Any], op: Operation, record_id: str) -> tuple[str, int, str]:
    seen = caller.call(op.method, fill_path(op.path, record_id), example_body(schema, op))
    return str(op), seen.status, seen.curl


@pytest.mark.decides("M3", "O4")
def test_member_without_role_is_refused_everywhere(
    target: Target, world: World, issuer: Issuer, evidence: Evidence, schema: dict[str, Any]
) -> None:
    """A member with no role gets 403 on every operation but the public ones and those about the caller alone."""
    org = world.org("org1")
    member = org.member_without_role
    assert member is not None, f"world incomplete: {'; '.join(world.problems)}"
    # Ids of real records in the member's own organisation: refusal must come from the policy, not from a miss.
    record_id = org.canaries[0].id if org.canaries else RANDOM_ID
    guarded = [op for op in operations(schema) if not op.public and not op.self_only]
    assert guarded, "the schema lists no guarded operation: nothing to decide"
    wrong = []
    with member.caller(issuer, target.base_url) as caller:
        for op in guarded:
            name, status, curl = _probe(caller, schema, op, record_id)
            evidence.add(f"{member.name}: {name} -> {status}")
            if status != 403:
                wrong.append(f"{name} -> {status} (expected 403)  repro: {curl}")
    assert not wrong, f"{len(wrong)} of {len(guarded)} operations not refused: " + "; ".join(wrong)
    evidence.add(f"{member.name} refused with 403 on all {len(guarded)} guarded operations of the schema")


@pytest.mark.decides("M3", "O4")
def test_anonymous_is_refused_everywhere_but_public(
    target: Target, world: World, evidence: Evidence, schema: dict[str, Any]
) -> None:
    """An anonymous caller gets 401 on every operation that is not public."""
    org = world.org("org1")
    record_id = org.canaries[0].id if org.canaries else RANDOM_ID
    guarded = [op for op in operations(schema) if not op.public]
    assert guarded, "the schema lists no guarded operation: nothing to decide"
    wrong = []
    with Caller(target.base_url) as anonymous:
        for op in guarded:
            name, status, curl = _probe(anonymous, schema, op, record_id)
            evidence.add(f"anonymous: {name} -> {status}")
            if status != 401:
                wrong.append(f"{name} -> {status} (expected 401)  repro: {curl}")
    assert not wrong, f"{len(wrong)} of {len(guarded)} operations not refused: " + "; ".join(wrong)
    evidence.add(f"anonymous refused with 401 on all {len(guarded)} non-public operations of the schema")
