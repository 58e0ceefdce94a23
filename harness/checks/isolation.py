"""Tenant isolation (M4, I3): nothing of another organisation is read, referenced, found or even detected.

Judged by comparison, not by status alone: another organisation's id must answer exactly as an id nobody
has (of the parameter's own type), and a search for its values exactly as a search for a value nobody
has; no answer to anyone may carry a marker of an organisation the caller is not in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, probe_check
from harness.engine.exchange import Exchange
from harness.engine.probes import Family, Probe

__all__ = [
    "foreign_id_answers_as_a_missing_one",
    "foreign_search_answers_as_a_random_one",
    "refuses_foreign_ids",
    "refuses_foreign_references",
    "shows_no_foreign_marker",
]


def _skeleton(document: Any) -> Any:
    """A JSON answer with every string blanked: its structure, list lengths, numbers and flags kept. Two searches
    that found the same nothing differ in echoes, ids, timestamps and request ids, never in these."""
    if isinstance(document, dict):
        return {k: _skeleton(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_skeleton(v) for v in document]
    return "" if isinstance(document, str) else document


def _comparable(seen: Exchange, value: str) -> Any:
    document = seen.json()
    return _skeleton(document) if document is not None else seen.text.replace(value, "?")


def _public(ctx: Context, probe: Probe) -> bool:
    op = probe.operation
    return op.public or any(pattern.matches(op.method, op.path) for pattern in ctx.config.fuzz.public)


def _shape(seen: Exchange) -> str:
    document = seen.json()
    if isinstance(document, dict):
        return ",".join(sorted(document))
    return type(document).__name__


@probe_check("M4", "I3", raises=(FindingKind.CROSS_ORG_READ,), families=(Family.FOREIGN_ID,))
def refuses_foreign_ids(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """Another organisation's ids in the path are never answered 2xx, but where an id nobody has gets the very
    same 2xx (a write that answers 204 whatever it did: its victim's state judges it) or the operation is public."""
    if _public(ctx, probe):
        return
    control = probe.control
    for seen in probe.answered:
        if seen.ok and not (control is not None and control.ok and control.status == seen.status):
            yield found(FindingKind.CROSS_ORG_READ, probe, f"answered {seen.status} on {probe.substituted}", seen)


@probe_check("M4", raises=(FindingKind.EXISTENCE_ORACLE,), families=(Family.FOREIGN_ID,))
def foreign_id_answers_as_a_missing_one(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """Another organisation's id answers as an id nobody has (same status, same shape): nothing to detect."""
    control = probe.control
    if control is None or not control.answered:
        return
    for seen in probe.answered:
        if not seen.ok and (seen.status, _shape(seen)) != (control.status, _shape(control)):
            detail = f"{probe.other_org}'s id answers {seen.status}, an id nobody has {control.status}"
            yield found(FindingKind.EXISTENCE_ORACLE, probe, detail, seen)


@probe_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,), families=(Family.FOREIGN_REFERENCE,))
def refuses_foreign_references(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """A body referring to another organisation's records is refused."""
    for seen in probe.answered:
        if seen.ok:
            yield found(FindingKind.CROSS_ORG_WRITE, probe, f"accepted {probe.substituted}", seen)


@probe_check("M4", "I3", raises=(FindingKind.FOREIGN_MARKER,), families=(Family.FOREIGN_QUERY,))
def foreign_search_answers_as_a_random_one(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """Searching for another organisation's value answers as searching for a value nobody has: the same status,
    and the same structure, list lengths, counts and flags (an echo, an id or a timestamp may differ)."""
    control, value, nobody = probe.control, probe.echo, probe.control_echo
    if control is None or value is None or nobody is None or not control.answered:
        return
    for seen in probe.answered:
        if (seen.status, _comparable(seen, value)) != (control.status, _comparable(control, nobody)):
            detail = f"searching {probe.substituted} answers unlike a value nobody has"
            yield found(FindingKind.FOREIGN_MARKER, probe, detail, seen)


@probe_check("M4", "I3", raises=(FindingKind.FOREIGN_MARKER,))
def shows_no_foreign_marker(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """No answer, to any request, carries a marker of an organisation the caller is not in (in its body or
    headers), but the foreign value the caller sent itself coming back."""
    own = probe.principal.org
    public = _public(ctx, probe)
    for seen in probe.answered:
        visible = seen.text + " " + " ".join(f"{k}: {v}" for k, v in seen.headers.items())
        for key in ctx.world.orgs:
            if key == own:
                continue
            # An identifier ({handle}) may show in a public operation's answer (a directory); content never.
            forbidden = ctx.world.markers(key) | (set() if public else ctx.world.handles(key))
            hit = next((m for m in sorted(forbidden) if m in visible and m != probe.echo), None)
            if hit is not None:
                how = f" to {probe.family.value} ({probe.substituted})" if probe.substituted else ""
                yield found(FindingKind.FOREIGN_MARKER, probe, f"{key}'s marker {hit} in the response{how}", seen)
                return
