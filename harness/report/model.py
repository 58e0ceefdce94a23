"""The report model: the answers decided from scenario outcomes, with the findings, coverage and tokens behind them.

A check is YES only if it was exercised (at least one scenario decided it, with evidence), every scenario
deciding it passed and no finding names it. Zero evidence is NO, never YES. A check the target cannot have is
N/A only when its config says so, with a reason; M3 and M4 can never be N/A, so that no config can make the
gate pass by declaring its questions away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from harness.checks.catalogue import CATALOGUE, Check
from harness.checks.findings import Finding

__all__ = [
    "NEVER_NOT_APPLICABLE",
    "Answer",
    "Artifact",
    "ArtifactKind",
    "CheckResult",
    "CoverageRow",
    "ErrorKind",
    "Report",
    "ScenarioOutcome",
    "TokenHint",
    "decide",
]

# The measures a deploy is gated on: every target has operations, so every target can be asked these.
NEVER_NOT_APPLICABLE = frozenset({"M3", "M4"})
NOT_EXERCISED = "not exercised: no scenario decided this check"
INTERRUPTED = "interrupted"


class Answer(StrEnum):
    """A check's answer; YES is good, N/A is a check the target's config says it cannot have."""

    YES = "YES"
    NO = "NO"
    NA = "N/A"
    INTERRUPTED = "INTERRUPTED"  # the run's answer only: it was stopped (Ctrl-C, SIGTERM) before it decided


class ErrorKind(StrEnum):
    """Why a run could not answer: each maps to one exit code of the CLI."""

    CONFIG = "config"  # a usage or config error (exit 2)
    UNREACHABLE = "unreachable"  # the target could not be started or reached (exit 3)


class ArtifactKind(StrEnum):
    """A file a scenario keeps as evidence a person can open."""

    TIMELINE = "timeline"  # the browser's navigations as an SVG strip
    TIMELINE_DATA = "timeline data"  # the same as JSON
    SCREENSHOT = "screenshot"  # the last page the browser showed
    TRACE = "trace"  # a Playwright trace: `playwright show-trace <file>`


@dataclass(frozen=True)
class Artifact:
    """One evidence file: what it is and where (relative to the report's folder where it lies inside it)."""

    kind: ArtifactKind
    path: str
    label: str = ""  # which visit it shows


@dataclass(frozen=True)
class CoverageRow:
    """How one operation was exercised by one principal: the requests sent, by which probe families, or why not."""

    operation: str
    principal: str
    requests: int
    families: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class TokenHint:
    """How to set the environment variable a repro line reads a principal's credential from."""

    variable: str  # `IAM_TOKEN_ORG1_ADMIN`, without the `$`
    principal: str
    how: str  # the one command that sets it, e.g. `export IAM_TOKEN_...="$(iam-harness token mint ...)"`


@dataclass(frozen=True)
class ScenarioOutcome:
    """What one scenario found, for the checks it decides."""

    nodeid: str
    checks: tuple[str, ...]
    passed: bool
    evidence: tuple[str, ...]
    failure: str | None = None
    repro: str | None = None
    findings: tuple[Finding, ...] = ()
    coverage: tuple[CoverageRow, ...] = ()
    tokens: tuple[TokenHint, ...] = ()
    artifacts: tuple[Artifact, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """A check's answer with the evidence and findings behind it."""

    id: str
    question: str
    answer: Answer
    evidence: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    reason: str | None = None  # why it is N/A, or its first failure; None for a YES
    artifacts: tuple[Artifact, ...] = ()  # the evidence files of the scenarios that failed it


@dataclass(frozen=True)
class Report:
    """The whole run's answer, and everything a writer shows of it."""

    seed: int
    target: str
    checks: tuple[CheckResult, ...]
    error: str | None = None
    error_kind: ErrorKind | None = None
    interrupted: bool = False
    coverage: tuple[CoverageRow, ...] = ()
    tokens: tuple[TokenHint, ...] = ()
    started: str = ""  # ISO 8601, UTC
    seconds: float = 0.0

    @property
    def answer(self) -> Answer:
        """YES iff the run finished without error, every check is YES or N/A, and M3 and M4 are YES; INTERRUPTED
        when it was stopped before it finished (what it decided so far is no answer)."""
        if self.interrupted:
            return Answer.INTERRUPTED
        if self.error is not None:
            return Answer.NO
        answers = {c.id: c.answer for c in self.checks}
        if any(answers.get(gate) is not Answer.YES for gate in NEVER_NOT_APPLICABLE):
            return Answer.NO
        return Answer.YES if all(a in (Answer.YES, Answer.NA) for a in answers.values()) else Answer.NO

    @property
    def reason(self) -> str | None:
        """Why the run's answer is not YES (interrupted, the run's error, or the first NO check); None for a YES."""
        if self.interrupted:
            return INTERRUPTED
        if self.error is not None:
            return self.error
        for c in self.checks:
            if c.answer is Answer.NO:
                return f"{c.id}: {c.reason or 'NO'}"
        if self.answer is Answer.NO:  # a gate missing from the checks altogether
            return f"{', '.join(sorted(NEVER_NOT_APPLICABLE))} must be answered YES"
        return None

    def check(self, check_id: str) -> CheckResult:
        """The result of one check; KeyError names an id the report does not hold."""
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(f"no check {check_id!r} in the report")


def decide(
    outcomes: Iterable[ScenarioOutcome],
    catalogue: tuple[Check, ...] = CATALOGUE,
    *,
    not_applicable: Mapping[str, str] | None = None,
) -> tuple[CheckResult, ...]:
    """Answer every check of the catalogue from the scenario outcomes; a check named in `not_applicable` is N/A
    with that reason. ValueError if it names M3 or M4, or a check the catalogue does not have."""
    declared = dict(not_applicable or {})
    if gates := sorted(NEVER_NOT_APPLICABLE & declared.keys()):
        raise ValueError(f"{', '.join(gates)} can never be N/A: every target is asked them")
    if unknown := sorted(declared.keys() - {c.id for c in catalogue}):
        raise ValueError(f"not_applicable names unknown check(s) {', '.join(unknown)}")
    seen = list(outcomes)
    by_check: dict[str, list[ScenarioOutcome]] = {c.id: [] for c in catalogue}
    for outcome in seen:
        for check_id in outcome.checks:
            by_check.setdefault(check_id, []).append(outcome)
    results = []
    for c in catalogue:
        findings = _findings_naming(c.id, seen)
        recorders = [o for o in seen if any(c.id in f.checks for f in o.findings)]
        if c.id in declared and not findings:  # a violation seen is NO, whatever the config declares away
            evidence = tuple(line for o in by_check[c.id] for line in o.evidence)
            results.append(CheckResult(c.id, c.question, Answer.NA, evidence, findings, declared[c.id]))
        else:
            results.append(_decide_one(c, by_check[c.id], findings, recorders))
    return tuple(results)


def _findings_naming(check_id: str, outcomes: list[ScenarioOutcome]) -> tuple[Finding, ...]:
    """Every finding that names the check, whichever scenario recorded it, each once. A finding turns every check
    it names NO, not only those its scenario decides: a gate must not pass on a violation seen elsewhere."""
    found: dict[Finding, None] = {}
    for outcome in outcomes:
        for finding in outcome.findings:
            if check_id in finding.checks:
                found.setdefault(finding, None)
    return tuple(found)


def _decide_one(
    check: Check, outcomes: list[ScenarioOutcome], findings: tuple[Finding, ...], recorders: list[ScenarioOutcome]
) -> CheckResult:
    if not outcomes and not findings:
        return CheckResult(check.id, check.question, Answer.NO, (NOT_EXERCISED,), (), NOT_EXERCISED)
    failed = [o for o in outcomes if not o.passed]
    empty = [o for o in outcomes if o.passed and not o.evidence]
    evidence: list[str] = []
    for o in failed:
        evidence.append(f"{o.nodeid}: {o.failure or 'failed'}")
        evidence.extend(o.evidence)
        if o.repro:
            evidence.append(f"repro: {o.repro}")
    for o in empty:
        evidence.append(f"{o.nodeid}: passed but recorded no evidence, so it proves nothing")
    if findings and not failed:
        evidence.append(f"{len(findings)} finding(s) name {check.id}, though every scenario deciding it passed")
        evidence.extend(f"repro: {o.repro}" for o in recorders if o.repro)
    if not outcomes:
        evidence.append(NOT_EXERCISED)
    for o in outcomes:
        if o.passed and o.evidence:
            evidence.extend(o.evidence)
    artifacts = tuple(dict.fromkeys(a for o in failed for a in o.artifacts))
    if failed or empty or findings or not outcomes:
        return CheckResult(check.id, check.question, Answer.NO, tuple(evidence), findings, evidence[0], artifacts)
    return CheckResult(check.id, check.question, Answer.YES, tuple(evidence), findings)
