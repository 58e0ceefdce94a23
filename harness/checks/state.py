"""The state after every write (M4, I3): judged by what the victim sees, not by what the attacker was told.

A write across organisations can answer 404, or 204 whatever it did, and still have happened; so after the
probes of every mutating operation each organisation's owner re-reads its protected canaries (each must read
as it did before), each principal re-reads what is about it alone (its profile) and signs in again with its own
credentials, and at the end the owners read their lists (they must hold nothing another organisation's
principals wrote or own). Every write aimed at another organisation carried a tag of its own, so a tag found in
a victim's state names the exact probe that put it there.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, state_check
from harness.engine.probes import StateKind, StateRead

__all__ = ["canaries_are_unchanged", "lists_hold_no_foreign_data", "sign_in_still_works", "victims_hold_no_tag"]


def _after(read: StateRead) -> str:
    return f"after the probes of {read.after}" if read.after else "at the end of the run"


@state_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,))
def canaries_are_unchanged(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """Every protected canary reads back, as its owner sees it, exactly as it last read (as planted)."""
    canary, seen = read.canary, read.exchange
    if canary is None or not seen.answered or _tag_in(ctx, read) is not None:
        return  # a tag names the probe itself: victims_hold_no_tag says it
    expected = canary.snapshot if read.expected is None else read.expected
    if seen.json() != expected:
        what = "vanished" if seen.status == 404 else "changed"
        detail = f"{read.org}'s {canary.resource} canary {canary.id} {what} {_after(read)}: now {seen.line()}"
        yield found(FindingKind.CROSS_ORG_WRITE, read, detail)


def _tag_in(ctx: Context, read: StateRead) -> str | None:
    """A tag written by another organisation's probe that the victim's state now shows."""
    if not read.exchange.answered:
        return None
    text = read.exchange.text
    own = f"tag{read.org}x"
    return next((t for t in sorted(ctx.world.tags) if t in text and not t.startswith(own)), None)


@state_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,))
def victims_hold_no_tag(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """No canary and no principal's own state holds what another organisation's probe wrote: the tag names it."""
    if read.kind not in (StateKind.CANARY, StateKind.SELF):
        return
    tag = _tag_in(ctx, read)
    if tag is not None:
        whose = f"{read.org}'s {read.canary.resource} canary" if read.canary is not None else f"{read.principal.name}'s"
        wrote = ctx.world.tags[tag]
        detail = f"{whose} {read.operation} shows {tag}, written by {wrote.description}"
        yield Finding(FindingKind.CROSS_ORG_WRITE, (), wrote.operation, wrote.principal, detail, read.exchange, "state")


@state_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,))
def sign_in_still_works(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """Every principal that signs in with a password still can, with its own credentials, after every write."""
    if read.kind is StateKind.SIGN_IN and read.failure is not None:
        detail = f"{read.principal.name} can no longer sign in with its own credentials {_after(read)}: {read.failure}"
        yield found(FindingKind.CROSS_ORG_WRITE, read, detail)


@state_check("M4", "I3", raises=(FindingKind.CROSS_ORG_WRITE,))
def lists_hold_no_foreign_data(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """No list an owner reads holds another organisation's markers or what its principals wrote; a public list (a
    directory of every user, by design) may show what they wrote, never their records' content."""
    seen = read.exchange
    if read.kind is not StateKind.LIST or not seen.answered:
        return
    for other in ctx.world.orgs.values():
        if other.key == read.org:
            continue
        forbidden = ctx.world.markers(other.key) | (set() if read.public else other.probes)
        hit = next((m for m in sorted(forbidden) if m in seen.text), None)
        if hit is not None:
            written = f" (written by {ctx.world.tags[hit].description})" if hit in ctx.world.tags else ""
            detail = f"{read.org}'s list holds {other.key}'s {hit}: written across organisations{written}"
            yield found(FindingKind.CROSS_ORG_WRITE, read, detail)
            return
