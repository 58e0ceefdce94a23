"""Evidence a scenario records for the checks it decides: lines, typed findings, coverage rows and token hints.

A scenario asks for the `evidence` fixture and records through it; the plugin carries what it recorded to the
report (across pytest-xdist workers too). The findings decide: any finding turns every check it names NO.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from harness.checks.findings import Finding
from harness.checks.judged import Judged
from harness.clerk.issuer import ActiveOrg
from harness.config.model import DEFAULT_ISSUER
from harness.engine.exchange import token_variable
from harness.engine.world import ClerkCredentials, Principal
from harness.report.model import Artifact, ArtifactKind, CoverageRow, TokenHint
from harness.target.running import Target

__all__ = [
    "MAX_SERVER_LINES",
    "NOT_APPLICABLE",
    "REPRO_TOKEN_TTL",
    "Evidence",
    "conclude",
    "not_applicable",
    "token_hint",
]

MAX_SERVER_LINES = 5
NOT_APPLICABLE = "not applicable to this target: "


def not_applicable(reason: str) -> NoReturn:
    """End a scenario that this target cannot have (no Clerk sessions, no login tokens): it decides nothing,
    so a check all of whose scenarios end so stays NO, "not exercised", unless the config declares it N/A."""
    pytest.skip(NOT_APPLICABLE + reason)


REPRO_TOKEN_TTL = 3600  # an hour to reproduce by hand; the scenarios' own tokens live Clerk's 60 s


def token_hint(principal: Principal) -> TokenHint | None:
    """How to set the variable a repro line reads `principal`'s credential from; None for anonymous (no
    credential, so no variable)."""
    if principal.anonymous:
        return None
    variable = token_variable(principal.name)
    credentials = principal.credentials
    if isinstance(credentials, ClerkCredentials):
        return TokenHint(variable, principal.name, _mint_command(variable, credentials))
    # A credential the config declares (an API key, a login's token) is the target's secret: never copied into
    # a report. Say where it comes from instead.
    how = (
        f"export {variable}=...  # the credential the target's config gives [[principals]] {principal.name!r}"
        " (for an Authorization header, the token without 'Bearer ')"
    )
    return TokenHint(variable, principal.name, how)


def _mint_command(variable: str, credentials: ClerkCredentials) -> str:
    issuer = credentials.issuer
    words = ["iam-harness", "token", "mint", "--sub", credentials.sub]
    org: ActiveOrg | None = credentials.org
    if org is not None:
        words += ["--org", org.id, "--slug", org.slug, "--role", org.role]
        for permission in org.permissions:
            words += ["--permission", permission]
    words += ["--ttl", str(REPRO_TOKEN_TTL)]
    if issuer.issuer_url != DEFAULT_ISSUER:
        words += ["--issuer", issuer.issuer_url]
    words += ["--azp", issuer.authorized_party]
    return f'export {variable}="$({shlex.join(words)})"'


class Evidence:
    """What one scenario recorded, plus the server-side errors logged while it ran."""

    def __init__(self, target: Target | None = None) -> None:
        self.lines: list[str] = []
        self.findings: list[Finding] = []
        self.coverage: list[CoverageRow] = []
        self.tokens: list[TokenHint] = []
        self.artifacts: list[Artifact] = []
        self._target = target
        self._mark = target.log_offset() if target is not None else 0

    def add(self, line: str) -> None:
        """Record one line of evidence."""
        self.lines.append(line)

    def add_artifact(self, kind: ArtifactKind, path: Path, label: str = "") -> None:
        """Record an evidence file (a timeline picture, a screenshot, a trace); the report links it on a NO."""
        self.artifacts.append(Artifact(kind, str(path), label))

    def add_finding(self, finding: Finding) -> None:
        """Record one finding: it turns every check it names NO."""
        self.findings.append(finding)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Record several findings."""
        self.findings.extend(findings)

    def add_coverage(self, rows: Iterable[CoverageRow]) -> None:
        """Record how operations were exercised by principals (the report's coverage table)."""
        self.coverage.extend(rows)

    def add_token_hint(self, who: Principal | TokenHint) -> None:
        """Record how to set the `$IAM_TOKEN_...` variable a principal's repro lines read (a principal's hint is
        derived from its credentials; anonymous needs none)."""
        hint = who if isinstance(who, TokenHint) else token_hint(who)
        if hint is not None and all(h.variable != hint.variable for h in self.tokens):
            self.tokens.append(hint)

    def add_token_hints(self, principals: Iterable[Principal]) -> None:
        """Record the token hints of several principals."""
        for principal in principals:
            self.add_token_hint(principal)

    def attach(self, name: str, data: Sequence[Mapping[str, object]]) -> None:
        """The older form of `add_coverage`: `attach("coverage", [{"operation", "principal", "requests",
        "checks", "note"}, ...])`, turned into coverage rows at once. Any other name is refused."""
        if name != "coverage":
            raise ValueError(f"attach() only takes 'coverage' (use add_coverage); got {name!r}")
        self.add_coverage(_coverage_row(row) for row in data)

    def server_errors(self) -> list[str]:
        """Errors the target logged since the scenario started (the embedded target's log only)."""
        if self._target is None:
            return []
        return [f"server log: {line}" for line in self._target.server_errors(self._mark)[:MAX_SERVER_LINES]]


def _coverage_row(row: Mapping[str, object]) -> CoverageRow:
    families = row.get("families", row.get("checks", ()))
    requests = row.get("requests", 0)
    return CoverageRow(
        operation=str(row["operation"]),
        principal=str(row["principal"]),
        requests=requests if isinstance(requests, int) else 0,
        families=tuple(str(f) for f in families)
        if isinstance(families, Iterable) and not isinstance(families, str)
        else (),
        note=str(row.get("note") or ""),
    )


def conclude(judged: Judged, evidence: Evidence) -> None:
    """End a scenario on what a check that ran its own requests found: N/A when the target cannot have what it
    looks for (and nothing was found), else its evidence and findings kept and the scenario failed on any."""
    if judged.inapplicable is not None and judged.ok:
        not_applicable(judged.inapplicable)
    for line in judged.evidence:
        evidence.add(line)
    evidence.add_findings(judged.findings)
    assert judged.ok, judged.summary()
