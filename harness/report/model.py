"""The report model: answers decided from scenario outcomes, and its JSON form (schema_version 1).

A check is YES only if it was exercised (at least one scenario decided it, with evidence) and every
scenario deciding it passed. Zero evidence is NO, never YES.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.checks.catalogue import CATALOGUE, Check

__all__ = ["Answer", "CheckResult", "Report", "ScenarioOutcome", "decide", "write_json"]

SCHEMA_VERSION = 1


class Answer(StrEnum):
    """A check's answer; YES is good."""

    YES = "YES"
    NO = "NO"


@dataclass(frozen=True)
class ScenarioOutcome:
    """What one scenario found, for the checks it decides."""

    nodeid: str
    checks: tuple[str, ...]
    passed: bool
    evidence: tuple[str, ...]
    failure: str | None = None
    repro: str | None = None
    attachments: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class CheckResult:
    """A check's answer with the evidence behind it."""

    id: str
    question: str
    answer: Answer
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """The whole run's answer."""

    seed: int
    target: str
    checks: tuple[CheckResult, ...]
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answer(self) -> Answer:
        """YES iff every check is YES and the run raised no error."""
        ok = self.error is None and all(c.answer is Answer.YES for c in self.checks)
        return Answer.YES if ok else Answer.NO

    def to_json(self) -> dict[str, Any]:
        """The document written to report.json."""
        return {
            **self.extra,
            "schema_version": SCHEMA_VERSION,
            "answer": self.answer.value,
            "seed": self.seed,
            "target": self.target,
            "error": self.error,
            "checks": [
                {"id": c.id, "question": c.question, "answer": c.answer.value, "evidence": list(c.evidence)}
                for c in self.checks
            ],
        }


def decide(outcomes: Iterable[ScenarioOutcome], catalogue: tuple[Check, ...] = CATALOGUE) -> tuple[CheckResult, ...]:
    """Answer every check of the catalogue from the scenario outcomes."""
    by_check: dict[str, list[ScenarioOutcome]] = {c.id: [] for c in catalogue}
    for outcome in outcomes:
        for check_id in outcome.checks:
            by_check.setdefault(check_id, []).append(outcome)
    return tuple(_decide_one(c, by_check[c.id]) for c in catalogue)


def _decide_one(check: Check, outcomes: list[ScenarioOutcome]) -> CheckResult:
    if not outcomes:
        return CheckResult(check.id, check.question, Answer.NO, ("not exercised: no scenario decided this check",))
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
    for o in outcomes:
        if o.passed and o.evidence:
            evidence.extend(o.evidence)
    answer = Answer.NO if failed or empty else Answer.YES
    return CheckResult(check.id, check.question, answer, tuple(evidence))


def write_json(report: Report, path: Path) -> None:
    """Write report.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
