"""What a check that runs its own requests (C1's) returns: its typed findings and the evidence lines behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.checks.findings import Finding, FindingKind
from harness.engine.exchange import Exchange

__all__ = ["Judged"]


@dataclass
class Judged:
    """Findings and evidence, built up by one check as it goes; `checks` is what every finding decides."""

    checks: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    inapplicable: str | None = None  # why this target cannot have what the check looks for: it decides nothing

    def add(self, line: str) -> None:
        """One line of evidence."""
        self.evidence.append(line)

    def find(
        self, kind: FindingKind, operation: str, principal: str, detail: str, exchange: Exchange | None = None
    ) -> None:
        """One finding, deciding this check's ids."""
        self.findings.append(Finding(kind, self.checks, operation, principal, detail, exchange, family=self.family))

    def cannot_apply(self, reason: str) -> Judged:
        """Say the target cannot have what this check looks for (no webhooks, no second Clerk organisation)."""
        self.inapplicable = reason
        return self

    def not_exercised(self, operation: str, principal: str, detail: str, exchange: Exchange | None = None) -> Judged:
        """The check should have applied and could not run (its control failed): a finding, never a pass."""
        self.find(FindingKind.NOT_EXERCISED, operation, principal, detail, exchange)
        return self

    def unanswered(self, seen: Exchange | None, operation: str, principal: str) -> bool:
        """Whether `seen` got no answer; if so (and the run's own guard did not refuse it) that is a finding: a
        request that was never answered proves nothing, so the check cannot pass on it."""
        if seen is None or seen.answered:
            return False
        if not seen.refused:
            detail = f"no answer, even on a fresh connection: {seen.failure}"
            self.find(FindingKind.UNANSWERED, operation, principal, detail, seen)
        return True

    @property
    def family(self) -> str:
        """The family name findings carry: the check ids, joined."""
        return "+".join(self.checks)

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.findings

    def summary(self, limit: int = 10) -> str:
        """`N findings: detail; detail; ...` for a scenario's failure message."""
        shown = "; ".join(f.detail for f in self.findings[:limit])
        return f"{len(self.findings)} finding(s): {shown}"
