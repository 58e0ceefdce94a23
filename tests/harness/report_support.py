"""Shared by the report tests and the fault matrix: schema validation, junit.xml read back, sample reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema

from harness.checks.catalogue import CATALOGUE
from harness.checks.findings import Finding, FindingKind
from harness.engine.exchange import Exchange
from harness.report.document import report_schema
from harness.report.model import CoverageRow, ErrorKind, Report, ScenarioOutcome, TokenHint, decide

_VALIDATOR = jsonschema.Draft202012Validator(report_schema())


def validate_report(document: dict[str, Any]) -> None:
    """Raise jsonschema's ValidationError, naming the path, unless `document` is a valid report.json."""
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise AssertionError("; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]))


def junit_answers(xml_text: str) -> dict[str, str]:
    """Each check's answer as junit.xml says it: NO for a failure, N/A for a skip, YES otherwise."""
    root = ET.fromstring(xml_text)
    answers: dict[str, str] = {}
    for case in root.iter("testcase"):
        if case.get("name") == "run":
            continue
        check_id = str(case.get("name")).split(":", 1)[0]
        failed, skipped = case.find("failure") is not None, case.find("skipped") is not None
        answers[check_id] = "NO" if failed else "N/A" if skipped else "YES"
    return answers


def report_answers(document: dict[str, Any]) -> dict[str, str]:
    """Each check's answer as report.json says it."""
    return {c["id"]: c["answer"] for c in document["checks"]}


def junit_agrees(report_dir: Path, document: dict[str, Any]) -> None:
    """junit.xml beside report.json answers every check as the report does."""
    assert junit_answers((report_dir / "junit.xml").read_text()) == report_answers(document)


def finding(kind: FindingKind, checks: tuple[str, ...], n: int, principal: str = "org1 admin") -> Finding:
    """A finding with an exchange whose repro reads the principal's token variable."""
    variable = "IAM_TOKEN_" + principal.upper().replace(" ", "_")
    curl = f'curl -X GET -H "Authorization: Bearer ${variable}" http://127.0.0.1:1/api/contacts/{n}'
    exchange = Exchange("GET", f"/api/contacts/{n}", 200, f'{{"id": {n}}}', curl)
    return Finding(kind, checks, f"GET /api/contacts/{{id}}#{n}", principal, f"2xx on org2's id {n}", exchange, "id")


def all_yes() -> tuple[ScenarioOutcome, ...]:
    """One passing scenario with evidence per check."""
    return tuple(ScenarioOutcome(f"s::{c.id}", (c.id,), True, (f"seen {c.id}",)) for c in CATALOGUE)


def yes_report() -> Report:
    """Every check YES, with coverage."""
    coverage = (CoverageRow("GET /api/contacts", "org1 admin", 12, ("id", "role")), CoverageRow("GET /x", "*", 0))
    return Report(7, "embedded", decide(all_yes()), coverage=coverage, started="2026-01-01T00:00:00+00:00")


def no_report() -> Report:
    """M4 NO with twelve CrossOrgRead findings and two ExistenceOracle ones, and token hints for them."""
    found = tuple(finding(FindingKind.CROSS_ORG_READ, ("M4", "I3"), n) for n in range(12))
    found += tuple(finding(FindingKind.EXISTENCE_ORACLE, ("M4",), n, "org2 viewer") for n in range(2))
    outcomes = [o for o in all_yes() if o.checks != ("M4",)]
    outcomes.append(
        ScenarioOutcome("s::M4", ("M4",), False, ("14 findings",), "14 finding(s)", "pytest 's::M4' --seed 7", found)
    )
    hint = TokenHint("IAM_TOKEN_ORG1_ADMIN", "org1 admin", 'export IAM_TOKEN_ORG1_ADMIN="$(iam-harness token mint)"')
    return Report(7, "embedded", decide(outcomes), tokens=(hint,))


def na_report() -> Report:
    """M1 and C2 N/A (no pages, no database access), O2 NO; everything else YES."""
    outcomes = [o for o in all_yes() if o.checks[0] not in {"M1", "C2", "O2"}]
    outcomes.append(ScenarioOutcome("s::O2", ("O2",), False, ("GET /dashboard -> 302 /sign-in",), "sent to sign-in"))
    na = {"M1": "the target has no pages", "C2": "no read access to the database"}
    return Report(7, "https://staging.example.com", decide(outcomes, not_applicable=na))


def error_report() -> Report:
    """A run that never reached its target."""
    checks = decide([])
    return Report(7, "http://127.0.0.1:9", checks, error="cannot reach 127.0.0.1:9", error_kind=ErrorKind.UNREACHABLE)


def interrupted_report() -> Report:
    """A run stopped with Ctrl-C after half its scenarios."""
    return Report(7, "embedded", decide(all_yes()[:5]), interrupted=True)
