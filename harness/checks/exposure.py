"""Excessive data exposure (M4): a password the run registered never comes back, to anyone, the owner included.

The world's setup registers its principals' users with the run's `{secret}`, and canaries may carry it in
secret-like fields; no answer may then show it, but those of the operations the config lists under
`[fuzz] returns_secret` (creating an API key shows it once, by design).
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, probe_check, state_check
from harness.engine.exchange import Exchange
from harness.engine.probes import Probe, StateRead

__all__ = ["secrets_are_never_shown", "state_shows_no_secret"]


def _shown(ctx: Context, seen: Exchange) -> str | None:
    if not seen.answered:
        return None
    visible = seen.text + " " + " ".join(seen.headers.values())
    return next((s for s in sorted(ctx.world.secrets) if s in visible), None)


def _masked(secret: str) -> str:
    return f"{secret[:3]}…{secret[-2:]}"


@probe_check("M4", raises=(FindingKind.SECRET_EXPOSED,))
def secrets_are_never_shown(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """No answer carries a password the run registered, but an operation's the config says returns it."""
    op = probe.operation
    if any(pattern.matches(op.method, op.path) for pattern in ctx.config.fuzz.returns_secret):
        return
    for seen in probe.answered:
        if (secret := _shown(ctx, seen)) is not None:
            detail = f"the answer to {probe.principal.name} shows a secret the run registered ({_masked(secret)})"
            yield found(FindingKind.SECRET_EXPOSED, probe, detail, seen)
            return


@state_check("M4", raises=(FindingKind.SECRET_EXPOSED,))
def state_shows_no_secret(ctx: Context, read: StateRead) -> Iterator[Finding]:
    """No canary, profile or list read back carries a password the run registered."""
    if (secret := _shown(ctx, read.exchange)) is not None:
        detail = f"{read.operation} shows {read.principal.name} a secret the run registered ({_masked(secret)})"
        yield found(FindingKind.SECRET_EXPOSED, read, detail)
