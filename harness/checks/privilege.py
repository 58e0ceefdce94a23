"""Privileged fields and privileges gained (M3, M4): judged by what a write did, not by what it answered.

Mass assignment: a create or update sent with privileged fields (the other organisation's id, an owner, the
admin role, true admin flags) in a complete body, then read back at once as the caller sees it; a field that
now holds what was sent took effect. Escalation: after a successful write by a principal that is not the
organisation's admin, a sample of its earlier refusals is sent again; one that now succeeds is a privilege the
write gave it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, probe_check
from harness.engine.fuzz import names_an_org
from harness.engine.probes import Family, Probe

__all__ = ["privileged_fields_take_no_effect", "refusals_stay_refused"]

_ROLE_FIELDS = ("role", "roles", "admin", "is_admin", "is_staff", "permissions")


def _holds(document: Any, name: str, value: Any) -> bool:
    """Whether the record (or the record under a top-level `data`) holds `value` in its field `name`."""
    if isinstance(document, dict) and isinstance(document.get("data"), dict) and name not in document:
        document = document["data"]
    if not isinstance(document, dict) or name not in document:
        return False
    held = document[name]
    if isinstance(value, list):
        return isinstance(held, list) and all(v in held for v in value)
    return held == value or (isinstance(value, int) and str(held) == str(value))


@probe_check("M3", "M4", raises=(FindingKind.MASS_ASSIGNMENT,), families=(Family.MASS_ASSIGNMENT,))
def privileged_fields_take_no_effect(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """A privileged field sent in a body never takes effect: the record read back (or the create's answer) does
    not hold the other organisation's id or owner; nor, for a principal that is not admin, the admin role or an
    admin flag. An update whose record is then gone from the caller's organisation was moved out of it."""
    if not probe.exchanges or not probe.exchanges[0].ok:
        return
    sent, *rest = probe.exchanges
    readback = rest[0] if rest else None
    document = readback.json() if readback is not None and readback.ok else sent.json()
    admin = probe.principal.role == ctx.config.admin_role
    for name, value in probe.privileged:
        if name in _ROLE_FIELDS and admin:
            continue  # the admin may grant the admin role
        if name in ctx.config.fuzz.privileged and admin:
            continue
        if _holds(document, name, value):
            shown = readback if readback is not None and readback.ok else sent
            detail = f"{name}={value!r} sent by {probe.principal.name} took effect: the record holds it"
            yield found(FindingKind.MASS_ASSIGNMENT, probe, detail, shown)
            return
    if readback is not None and readback.status == 404 and probe.operation.path_params:
        moved = [f"{n}={v!r}" for n, v in probe.privileged if names_an_org(n)]
        if moved:
            detail = f"after {', '.join(moved)} the caller's own record is gone from its organisation: moved out"
            yield found(FindingKind.MASS_ASSIGNMENT, probe, detail, readback)


@probe_check("M3", raises=(FindingKind.PRIVILEGE_ESCALATION,), families=(Family.ESCALATION,))
def refusals_stay_refused(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """A request a principal was refused is refused again after the principal's own successful writes."""
    for seen in probe.answered:
        if seen.ok:
            detail = f"{probe.principal.name} sent {probe.substituted}: answered {seen.status}, no longer refused"
            yield found(FindingKind.PRIVILEGE_ESCALATION, probe, detail, seen)
