"""Internal errors (O1's fuzzed half): no input, from anyone, gets a 5xx, a stack trace or SQL text."""

from __future__ import annotations

from collections.abc import Iterator

from harness.checks.findings import Finding, FindingKind
from harness.checks.registry import Context, found, probe_check
from harness.engine.exchange import leaks_in
from harness.engine.probes import Probe

__all__ = ["shows_no_internal_error"]


@probe_check("O1", raises=(FindingKind.SERVER_ERROR,))
def shows_no_internal_error(ctx: Context, probe: Probe) -> Iterator[Finding]:
    """Every answer is below 500 and shows no stack trace, SQL or database error."""
    for seen in probe.answered:
        if seen.status >= 500:
            yield found(FindingKind.SERVER_ERROR, probe, f"answered {seen.status}", seen)
        if leaks := leaks_in(seen.text):
            yield found(FindingKind.SERVER_ERROR, probe, f"response shows internals: {leaks[0]!r}", seen)
