"""M4: org1's admin cannot read, change or even detect org2's data."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.world import World
from harness.evidence import Evidence
from harness.issuer import Issuer
from harness.openapi import example_body, fill_path, operations
from harness.target import Target

RANDOM_ID = "00000000-0000-4000-8000-00000000beef"


@pytest.mark.decides("M4")
def test_org1_admin_cannot_reach_org2_records(
    target: Target, world: World, issuer: Issuer, evidence: Evidence, schema: dict[str, Any]
) -> None:
    """Org1's admin reads, lists, changes and deletes org2's records by id: never 2xx, no marker, nothing changed."""
    org1, org2 = world.org("org1"), world.org("org2")
    assert org2.canaries and org1.canaries, f"world incomplete: {'; '.join(world.problems) or 'no canaries'}"
    ops = [op for op in operations(schema) if not op.public]
    by_id = [op for op in ops if op.path_params]
    lists = [op for op in ops if not op.path_params and op.method == "GET"]
    assert by_id, "the schema lists no operation that takes an id: nothing to decide"
    foreign_ids = [c.id for c in org2.canaries] + ([org2.owner_user_id] if org2.owner_user_id else [])
    markers = world.markers("org2")
    leaks = []
    with org1.owner.caller(issuer, target.base_url) as attacker:
        for op in by_id:
            body = example_body(schema, op, text=f"changed-by-{org1.key}")
            control = attacker.call(op.method, fill_path(op.path, RANDOM_ID), body)
            statuses = []
            for foreign in foreign_ids:
                seen = attacker.call(op.method, fill_path(op.path, foreign), body)
                statuses.append(seen.status)
                if seen.ok:
                    leaks.append(f"{op} on org2's {foreign} -> {seen.status}  repro: {seen.curl}")
                if found := [m for m in markers if m in seen.text]:
                    leaks.append(f"{op} on org2's {foreign} shows org2 marker {found[0]}  repro: {seen.curl}")
                if seen.status != control.status:
                    leaks.append(
                        f"{op}: org2's id answers {seen.status}, a random id {control.status}: existence detectable"
                    )
            evidence.add(
                f"{org1.owner.name}: {op} with {len(foreign_ids)} org2 ids -> {statuses} (random id: {control.status})"
            )
        for op in lists:
            seen = attacker.call(op.method, op.path)
            if found := [m for m in markers if m in seen.text]:
                leaks.append(f"{op} lists org2 marker {found[0]}  repro: {seen.curl}")
            evidence.add(f"{org1.owner.name}: {op} -> {seen.status}, no org2 marker" if not found else seen.line())
    with org2.owner.caller(issuer, target.base_url) as owner:
        for canary in org2.canaries:
            now = owner.call("GET", canary.read_path)
            if now.json() != canary.snapshot:
                leaks.append(f"org2's {canary.id} changed or vanished: now {now.line()}")
            state = "unchanged" if now.json() == canary.snapshot else "CHANGED"
            evidence.add(f"{org2.owner.name} re-read {canary.read_path}: {state}")
    assert not leaks, f"{len(leaks)} cross-org finding(s): " + "; ".join(leaks[:10])
    evidence.add(
        f"{len(by_id)} id-taking operations x {len(foreign_ids)} org2 ids: never 2xx, same answer as a random id; "
        f"{len(lists)} lists without org2 markers; {len(org2.canaries)} org2 canaries unchanged"
    )
