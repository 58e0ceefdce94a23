"""junit.xml from the report: one test case per check, failed exactly when NO, skipped when N/A."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.document import to_json
from harness.report.junit import write_junit
from harness.report.model import Answer
from tests.harness.report_support import error_report, junit_agrees, junit_answers, na_report, no_report, yes_report


def _suite(tmp_path: Path) -> ET.Element:
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    return suite


def test_a_no_and_an_na_agree_with_the_report_on_every_check(tmp_path: Path) -> None:
    report = na_report()  # O2 NO; M1 and C2 N/A; the rest YES
    write_junit(report, tmp_path / "junit.xml")
    junit_agrees(tmp_path, to_json(report))
    suite = _suite(tmp_path)
    assert suite.attrib | {"time": "0"} == {
        "name": "iam-harness",
        "tests": str(len(report.checks)),
        "failures": "1",
        "errors": "0",
        "skipped": "2",
        "time": "0",
    }
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    assert all(c.attrib["classname"] == "iam-harness" for c in cases.values())
    o2 = cases[f"O2: {report.check('O2').question}"]
    failure = o2.find("failure")
    assert failure is not None and failure.attrib["message"] == "s::O2: sent to sign-in"
    assert "GET /dashboard -> 302 /sign-in" in (failure.text or "")
    skipped = cases[f"C2: {report.check('C2').question}"].find("skipped")
    assert skipped is not None and skipped.attrib["message"] == "no read access to the database"
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props == {"answer": "NO", "seed": "7", "target": "https://staging.example.com"}


def test_failure_text_carries_the_findings(tmp_path: Path) -> None:
    report = no_report()
    write_junit(report, tmp_path / "junit.xml")
    m4 = next(c for c in _suite(tmp_path).iter("testcase") if c.attrib["name"].startswith("M4:"))
    text = m4.findtext("failure") or ""
    assert text.count("CrossOrgRead: org1 admin GET /api/contacts/") == 12
    assert "repro: curl -X GET" in text and "repro: pytest 's::M4' --seed 7" in text


def test_all_yes_has_no_failure(tmp_path: Path) -> None:
    report = yes_report()
    write_junit(report, tmp_path / "junit.xml")
    answers = junit_answers((tmp_path / "junit.xml").read_text())
    assert set(answers.values()) == {"YES"} and len(answers) == len(report.checks)
    assert _suite(tmp_path).attrib["timestamp"] == report.started


def test_a_run_error_is_one_error_case_besides_the_checks(tmp_path: Path) -> None:
    report = error_report()
    write_junit(report, tmp_path / "junit.xml")
    suite = _suite(tmp_path)
    assert suite.attrib["errors"] == "1" and suite.attrib["tests"] == str(len(report.checks) + 1)
    assert suite.attrib["failures"] == str(sum(c.answer is Answer.NO for c in report.checks))
    run = next(c for c in suite.iter("testcase") if c.attrib["name"] == "run")
    error = run.find("error")
    assert error is not None and error.attrib == {"message": "cannot reach 127.0.0.1:9", "type": "unreachable"}
    junit_agrees(tmp_path, to_json(report))
