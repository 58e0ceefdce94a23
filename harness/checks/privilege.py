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
from harness.engine.exchange import Exchange
from harness.engine.fuzz import names_an_org
from harness.engine.probes import Family, Probe

__all__ = ["organisation_fields_take_no_effect", "refusals_stay_refused", "role_fields_take_no_effect"]


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


def _took_effect(probe: Probe, fields: list[tuple[str, Any]]) -> tuple[str, Any, Exchange] | None:
    """The first of `fields` the record read back (or the create's answer) now holds as sent."""
    if not probe.exchanges or not probe.exchanges[0].ok:
        return None
    sent, *rest = probe.exchanges
    shown = rest[0] if rest and rest[0].ok else sent
    document = shown.json()
    return next(((name, value, shown) for name, value in fields if _holds(document, name, value)), None)


@probe_check("M4", "I3", raises=(FindingKind.MASS_ASSIGNMENT,), families=(Family.MASS_ASSIGNMENT,))
def organisation_fields_take_no_effect(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """A field naming another organisation or its user never takes effect: the record read back (or the
    create's answer) does not hold it, and a record updated with it is not gone from the caller's organisation."""
    crossing = [(n, v) for n, v in probe.privileged if names_an_org(n) or n in ("owner_id", "user_id")]
    if not crossing:
        return
    if (hit := _took_effect(probe, crossing)) is not None:
        name, value, shown = hit
        detail = f"{name}={value!r} sent by {probe.principal.name} took effect: the record holds it"
        yield found(FindingKind.MASS_ASSIGNMENT, probe, detail, shown)
        return
    sent, *rest = probe.exchanges or (None,)
    readback = rest[0] if rest else None
    if sent is not None and sent.ok and readback is not None and readback.status == 404:
        moved = ", ".join(f"{n}={v!r}" for n, v in crossing)
        what = "its own record" if probe.operation.path_params else "the record it created"
        detail = f"after {moved}, {what} is gone from {probe.principal.name}'s organisation: moved out"
        yield found(FindingKind.MASS_ASSIGNMENT, probe, detail, readback)


@probe_check("M3", raises=(FindingKind.MASS_ASSIGNMENT,), families=(Family.MASS_ASSIGNMENT,))
def role_fields_take_no_effect(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """A role, an admin flag or a permission sent by a principal that is not the admin never takes effect."""
    if probe.principal.role == ctx.config.admin_role:
        return  # the admin may grant the admin role
    raising = [(n, v) for n, v in probe.privileged if not names_an_org(n) and n not in ("owner_id", "user_id")]
    if (hit := _took_effect(probe, raising)) is not None:
        name, value, shown = hit
        detail = f"{name}={value!r} sent by {probe.principal.name} took effect: the record holds it"
        yield found(FindingKind.MASS_ASSIGNMENT, probe, detail, shown)


@probe_check("M3", raises=(FindingKind.PRIVILEGE_ESCALATION,), families=(Family.ESCALATION,))
def refusals_stay_refused(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """A request a principal was refused is refused again after the principal's own successful writes."""
    for seen in probe.answered:
        if seen.ok:
            detail = f"{probe.principal.name} sent {probe.substituted}: answered {seen.status}, no longer refused"
            yield found(FindingKind.PRIVILEGE_ESCALATION, probe, detail, seen)
