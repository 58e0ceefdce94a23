"""junit.xml written from the report: one test case per check, failed exactly when the check is NO.

Written from the report rather than by pytest, so that CI's view cannot disagree with it: pytest sees
scenarios, and a scenario can pass while the check it decides is NO (it recorded no evidence, or another
scenario deciding the same check failed).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.model import Answer, CheckResult, Report

__all__ = ["CLASSNAME", "MAX_TEXT_LINES", "RUN_CASE", "junit_xml", "testcase_name", "write_junit"]

CLASSNAME = "iam-harness"
RUN_CASE = "run"  # the extra test case that carries a run's error or interruption
MAX_TEXT_LINES = 60


def testcase_name(check: CheckResult) -> str:
    """`M1: Owner logs in -> dashboard loads, no redirect loop`."""
    return f"{check.id}: {check.question}"


def _text(check: CheckResult) -> str:
    lines = [f.line() for f in check.findings] + list(check.evidence)
    if len(lines) > MAX_TEXT_LINES:
        lines = [*lines[:MAX_TEXT_LINES], f"... {len(lines) - MAX_TEXT_LINES} more lines in report.json"]
    return "\n".join(lines)


def _testcase(suite: ET.Element, check: CheckResult) -> None:
    case = ET.SubElement(suite, "testcase", classname=CLASSNAME, name=testcase_name(check), time="0")
    if check.answer is Answer.NO:
        failure = ET.SubElement(case, "failure", message=check.reason or "NO", type="NO")
        failure.text = _text(check)
    elif check.answer is Answer.NA:
        ET.SubElement(case, "skipped", message=check.reason or "not applicable")
    else:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(check.evidence)


def junit_xml(report: Report) -> ET.Element:
    """The report as a JUnit XML document's root (one `testsuite` inside `testsuites`)."""
    broken = report.error is not None or report.interrupted
    counts = {
        "tests": str(len(report.checks) + (1 if broken else 0)),
        "failures": str(sum(1 for c in report.checks if c.answer is Answer.NO)),
        "errors": "1" if broken else "0",
        "skipped": str(sum(1 for c in report.checks if c.answer is Answer.NA)),
        "time": f"{report.seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": CLASSNAME, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": CLASSNAME, **counts})
    if report.started:
        suite.set("timestamp", report.started)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("answer", report.answer.value), ("seed", str(report.seed)), ("target", report.target)):
        ET.SubElement(properties, "property", name=name, value=value)
    for check in report.checks:
        _testcase(suite, check)
    if broken:
        case = ET.SubElement(suite, "testcase", classname=CLASSNAME, name=RUN_CASE, time=f"{report.seconds:.3f}")
        kind = "interrupted" if report.interrupted else (report.error_kind.value if report.error_kind else "error")
        ET.SubElement(case, "error", message=report.reason or kind, type=kind)
    ET.indent(root)
    return root


def write_junit(report: Report, path: Path) -> None:
    """Write junit.xml."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(junit_xml(report)).write(path, encoding="utf-8", xml_declaration=True)
