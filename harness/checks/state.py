"""The state after every probe (M4, I3): judged by what the victim sees, not by what the attacker was told.

A write across organisations can answer 404 and still have happened; so each organisation's owner
re-reads its protected canaries (they must be exactly as they were planted) and its lists (they must
hold nothing another organisation's principals wrote or own).
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, state_check
from harness.engine.probes import StateRead

__all__ = ["canaries_are_unchanged", "lists_hold_no_foreign_data"]


@state_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,))
def canaries_are_unchanged(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """Every protected canary reads back, as its owner sees it, exactly as it was planted."""
    canary, seen = read.canary, read.exchange
    if canary is None or not seen.answered:
        return
    if seen.json() != canary.snapshot:
        detail = f"{canary.resource} canary {canary.id} changed or vanished: now {seen.line()}"
        yield found(FindingKind.CROSS_ORG_WRITE, read, detail)


@state_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,))
def lists_hold_no_foreign_data(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """No list an owner reads holds another organisation's markers or what its principals wrote."""
    seen = read.exchange
    if read.canary is not None or not seen.answered:
        return
    for other in ctx.world.orgs.values():
        if other.key == read.org:
            continue
        hit = next((m for m in sorted([*ctx.world.markers(other.key), *other.probes]) if m in seen.text), None)
        if hit is not None:
            detail = f"{read.org}'s list holds {other.key}'s {hit}: written across organisations"
            yield found(FindingKind.CROSS_ORG_WRITE, read, detail)
            return
