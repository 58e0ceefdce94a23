"""The role matrix (M3, O4) and whether scoping broke the caller's own queries (I3).

Who must be refused: anonymous on every operation but the public ones (401); a member with no role on
every operation but the public ones and those about the caller alone (403); a read-only role on every
mutating operation (403); everyone on the operations `[fuzz] staff` lists; any other role that is not the
admin on every mutating operation that addresses records it did not create (the admin's: staff objects), but
those `[roles] allow` lists for it. The organisation's admin must succeed at least once on its own records.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, probe_check
from harness.config.operations import OperationPattern
from harness.engine.probes import Family, Probe
from harness.engine.schema import Operation
from harness.engine.world import Principal

__all__ = ["admin_succeeds_on_own_data", "expected_refusal", "refuses_without_permission"]


def _listed(patterns: tuple[OperationPattern, ...], op: Operation) -> bool:
    return any(pattern.matches(op.method, op.path) for pattern in patterns)


ANONYMOUS_REFUSAL = frozenset({401})
# A signed-in principal without the permission: 403, or 404 from a target that looks the record up before it
# asks about the role (and answers "cannot read" as missing, as it should); never a 2xx, never a 5xx.
MEMBER_REFUSAL = frozenset({403, 404})


def expected_refusal(ctx: Context, who: Principal, op: Operation) -> frozenset[int] | None:
    """The statuses `who` must be refused `op` with, or None where it may be let through."""
    public = op.public or _listed(ctx.config.fuzz.public, op)
    self_only = op.self_only or _listed(ctx.config.fuzz.self_only, op)
    if who.anonymous:
        return None if public else ANONYMOUS_REFUSAL
    if _listed(ctx.config.fuzz.staff, op):
        return MEMBER_REFUSAL  # the platform's staff's: no principal of the world, its admins included
    if public or self_only:
        return None
    if who.role is None:
        return MEMBER_REFUSAL
    if who.role in ctx.config.roles.read_only and op.mutating:
        return MEMBER_REFUSAL
    allowed = _listed(ctx.config.roles.allow.get(who.role, ()), op)
    if who.role != ctx.config.admin_role and op.mutating and _addresses_records(ctx, op) and not allowed:
        return MEMBER_REFUSAL
    return None


def _addresses_records(ctx: Context, op: Operation) -> bool:
    """Whether the path addresses records of the organisation's (its scratch records, created by its admin), not
    only the caller itself: a parameter of a resource or of members."""
    members = ctx.config.members.param if ctx.config.members is not None else None
    params = {c.param for c in ctx.config.canaries} | ({members} if members else set())
    return any(p in params for p in op.path_params)


@probe_check("M3", "O4", raises=(FindingKind.NOT_REFUSED,), families=(Family.ROLE,))
def refuses_without_permission(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """Every case sent by a principal without the permission is refused, with the status its kind must get."""
    expected = expected_refusal(ctx, probe.principal, probe.operation)
    if expected is None:
        return
    for seen in probe.answered:
        if seen.status not in expected:
            wanted = " or ".join(map(str, sorted(expected)))
            yield found(FindingKind.NOT_REFUSED, probe, f"answered {seen.status}, expected {wanted}", seen)
            return  # one finding per principal and operation: the rest are the same fault


# A 409 says the target found the caller's own record and refused it for its state (a book still on loan, a
# member still owning records): scoping let the admin reach it, which is all I3 asks.
REACHED = frozenset({409})


@probe_check("I3", raises=(FindingKind.NEVER_SUCCEEDED,), families=(Family.ROLE,))
def admin_succeeds_on_own_data(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """The organisation's admin reaches its own organisation's records at least once in the cases sent: a 2xx,
    or a conflict with the record's state."""
    op, who = probe.operation, probe.principal
    guarded = not (op.public or op.self_only or _listed(ctx.config.fuzz.staff, op))
    if who.role is None or who.role != ctx.config.admin_role or not guarded or not probe.own_records:
        return
    answered = probe.answered
    if answered and not any(seen.ok or seen.status in REACHED for seen in answered):
        statuses = sorted({seen.status for seen in answered})
        detail = f"no 2xx in {len(answered)} cases on its own organisation's data (answers {statuses})"
        yield found(FindingKind.NEVER_SUCCEEDED, probe, detail)
