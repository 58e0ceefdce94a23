"""report.json (schema_version 2): the report as one JSON document, every finding kept, and its JSON Schema.

The schema ships beside this module (`report.schema.json`, draft 2020-12), so that a pipeline reading the
report can validate it without this package's code.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from harness.report.model import Artifact, CheckResult, CoverageRow, Report, TokenHint

__all__ = ["SCHEMA_VERSION", "artifact_json", "coverage_json", "report_schema", "to_json", "write_json"]

SCHEMA_VERSION = 2
SCHEMA_FILE = "report.schema.json"


def report_schema() -> dict[str, Any]:
    """The JSON Schema every report.json conforms to."""
    text = resources.files("harness.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    found: dict[str, Any] = json.loads(text)
    return found


def _check(c: CheckResult) -> dict[str, Any]:
    return {
        "id": c.id,
        "question": c.question,
        "answer": c.answer.value,
        "reason": c.reason,
        "evidence": list(c.evidence),
        "findings": [f.to_json() for f in c.findings],
        "artifacts": [artifact_json(a) for a in c.artifacts],
    }


def artifact_json(artifact: Artifact) -> dict[str, str]:
    """One evidence file as report.json holds it (and as it travels from a parallel worker)."""
    return {"kind": artifact.kind.value, "path": artifact.path, "label": artifact.label}


def coverage_json(row: CoverageRow) -> dict[str, Any]:
    """One coverage row as report.json holds it (and as it travels from a parallel worker)."""
    return {
        "operation": row.operation,
        "principal": row.principal,
        "requests": row.requests,
        "families": list(row.families),
        "note": row.note,
    }


def _token(hint: TokenHint) -> dict[str, Any]:
    return {"variable": hint.variable, "principal": hint.principal, "how": hint.how}


def to_json(report: Report) -> dict[str, Any]:
    """The document written to report.json."""
    return {
        "schema_version": SCHEMA_VERSION,
        "answer": report.answer.value,
        "reason": report.reason,
        "seed": report.seed,
        "target": report.target,
        "started": report.started,
        "seconds": round(report.seconds, 3),
        "error": report.error,
        "error_kind": report.error_kind.value if report.error_kind is not None else None,
        "interrupted": report.interrupted,
        "checks": [_check(c) for c in report.checks],
        "coverage": [coverage_json(row) for row in report.coverage],
        "tokens": [_token(hint) for hint in report.tokens],
    }


def write_json(report: Report, path: Path) -> None:
    """Write report.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
