"""The pytest plugin, run with pytester: markers, evidence and findings, the report (on disk and in-process), the
deselection of N/A scenarios, an interrupted run, and the exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks.catalogue import CATALOGUE
from harness.checks.findings import FindingKind
from harness.plugin import ReportHolder
from harness.report.model import Answer
from tests.harness.report_support import junit_agrees, validate_report

pytestmark = pytest.mark.e2e  # whole conformance runs under pytester, some with xdist workers

CONFTEST = '''
import pytest

pytest_plugins = ["harness.plugin"]


class StubTarget:
    """Stands in for a target: these tests exercise only the plugin's bookkeeping."""

    base_url = "http://127.0.0.1:9"
    config = None
    description = "stub target"

    def log_offset(self):
        return 0

    def server_errors(self, since):
        return ["ERROR stub: sqlstate=22P02"]


@pytest.fixture(scope="session")
def target():
    return StubTarget()
'''

SCENARIOS = """
import pytest


@pytest.mark.decides("M1")
def test_passes_with_evidence(evidence):
    evidence.add("dashboard shown")


@pytest.mark.decides("M2")
def test_passes_without_evidence(evidence):
    pass


@pytest.mark.decides("M3", "O4")
def test_fails(evidence):
    evidence.add("GET /x -> 200")
    assert False, "1 operation not refused"


@pytest.mark.decides("O3")
def test_skipped(evidence):
    pytest.skip("no roles operation")


@pytest.mark.decides("I3")
def test_passes_with_a_finding(evidence):
    from harness.checks.findings import Finding, FindingKind
    from harness.engine.exchange import Exchange
    from harness.report.model import CoverageRow, TokenHint

    seen = Exchange("GET", "/c/7", 200, "{}", 'curl -H "Authorization: Bearer $IAM_TOKEN_ORG1_ADMIN" http://h/c/7')
    evidence.add("fuzzed 1 operation")
    evidence.add_finding(Finding(FindingKind.CROSS_ORG_READ, ("I3", "M4"), "GET /c/{id}", "org1 admin", "2xx", seen))
    evidence.add_coverage([CoverageRow("GET /c/{id}", "org1 admin", 3, ("id",))])
    evidence.add_token_hint(TokenHint("IAM_TOKEN_ORG1_ADMIN", "org1 admin", "export IAM_TOKEN_ORG1_ADMIN=x"))


def test_unmarked():
    pass
"""


# The target's config, as the plugin reads it, replaced by one that declares checks N/A: `not_applicable` may not
# be a field of the config model yet, and the plugin reads it with getattr.
STAND_IN = """

import harness.plugin

_real_config = harness.plugin._load_target_config


class StandInConfig:
    not_applicable = {not_applicable!r}

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)


harness.plugin._load_target_config = lambda config: StandInConfig(_real_config(config))
"""


def _report(pytester: pytest.Pytester, *args: str, conftest: str = CONFTEST) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_scenarios=SCENARIOS)
    result = pytester.runpytest_subprocess("--report-dir", str(pytester.path / "out"), "--seed", "5", *args)
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    validate_report(report)
    junit_agrees(pytester.path / "out", report)
    return result, report


def _answers(report: dict[str, Any]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["id"]: c["answer"] for c in checks}


def _check(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == check_id)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_report_decides_from_outcomes(pytester: pytest.Pytester, workers: list[str]) -> None:
    result, report = _report(pytester, *workers)
    answers = _answers(report)
    assert answers["M1"] == "YES"
    assert answers["M2"] == "NO"  # passed, but with zero evidence
    assert answers["M3"] == "NO" and answers["O4"] == "NO"
    assert answers["O3"] == "NO"  # skipped: not exercised
    assert answers["I3"] == "NO"  # passed, but recorded a finding
    assert answers["M4"] == "NO"  # nobody decided it, and a finding names it
    assert report["seed"] == 5 and report["answer"] == "NO"
    m3 = _check(report, "M3")["evidence"]
    assert m3[0].endswith("test_fails: 1 operation not refused")
    assert "GET /x -> 200" in m3 and "server log: ERROR stub: sqlstate=22P02" in m3
    assert any(line.startswith("repro: pytest 'test_scenarios.py::test_fails' --seed 5") for line in m3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "iam-harness: NO" in result.stdout.str()
    # The finding crossed from the worker as JSON and was decided on as a typed finding.
    for check_id in ("I3", "M4"):
        (found,) = _check(report, check_id)["findings"]
        assert found["kind"] == FindingKind.CROSS_ORG_READ.value and found["severity"] == "critical"
        assert found["repro"].startswith("curl ") and found["exchange"]["status"] == 200
    assert any(line.startswith("repro: pytest 'test_scenarios.py::test_passes_with_a_finding'") for line in
               _check(report, "I3")["evidence"])  # fmt: skip
    assert report["coverage"] == [
        {"operation": "GET /c/{id}", "principal": "org1 admin", "requests": 3, "families": ["id"], "note": ""}
    ]
    assert report["tokens"] == [
        {"variable": "IAM_TOKEN_ORG1_ADMIN", "principal": "org1 admin", "how": "export IAM_TOKEN_ORG1_ADMIN=x"}
    ]
    markdown = (pytester.path / "out" / "report.md").read_text()
    assert "### CrossOrgRead (critical): 1" in markdown and "`export IAM_TOKEN_ORG1_ADMIN=x`" in markdown


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_scenarios_of_not_applicable_checks_are_deselected(pytester: pytest.Pytester, workers: list[str]) -> None:
    declared = {"O3": "the target has no roles operation", "M2": "users are tenants: no organisations"}
    result, report = _report(pytester, *workers, conftest=CONFTEST + STAND_IN.format(not_applicable=declared))
    # M2's and O3's scenarios never ran (under xdist the workers deselect them, and the controller says nothing).
    assert result.parseoutcomes() == {"passed": 3, "failed": 1} | ({} if workers else {"deselected": 2})
    for check_id, reason in declared.items():
        assert _check(report, check_id)["answer"] == "N/A" and _check(report, check_id)["reason"] == reason
        assert _check(report, check_id)["evidence"] == []  # its scenario never ran
    assert _answers(report)["M1"] == "YES" and _answers(report)["M3"] == "NO"  # the others are decided as ever


def test_declaring_m3_not_applicable_is_a_config_error(pytester: pytest.Pytester) -> None:
    declared = {"M3": "we have no permissions", "O3": "no roles operation"}
    result, report = _report(pytester, conftest=CONFTEST + STAND_IN.format(not_applicable=declared))
    assert report["error_kind"] == "config" and "M3" in report["error"] and report["answer"] == "NO"
    assert _answers(report)["M3"] == "NO" and _answers(report)["O3"] == "N/A"  # M3 is still asked
    assert "1 deselected" in result.stdout.str()  # the O3 scenario only


def test_report_is_handed_back_in_process(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_scenarios=SCENARIOS)
    holder = ReportHolder()
    pytester.inline_run("--report-dir", str(pytester.path / "out"), "--seed", "9", plugins=[holder])
    assert holder.report is not None
    assert holder.report.seed == 9 and holder.report.answer is Answer.NO
    assert holder.report.check("M1").answer is Answer.YES
    assert holder.report.check("I3").findings[0].kind is FindingKind.CROSS_ORG_READ
    on_disk = json.loads((pytester.path / "out" / "report.json").read_text())
    assert {c.id: c.answer.value for c in holder.report.checks} == _answers(on_disk)


def test_interrupted_run_answers_interrupted_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_scenarios="""
import pytest


@pytest.mark.decides("M1")
def test_a(evidence):
    evidence.add("dashboard shown")


@pytest.mark.decides("M2")
def test_b(evidence):
    raise KeyboardInterrupt


@pytest.mark.decides("M3")
def test_c(evidence):
    evidence.add("never reached")
"""
    )
    out: Path = pytester.path / "out"
    result = pytester.runpytest_subprocess("--report-dir", str(out))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["interrupted"] is True and report["answer"] == "INTERRUPTED" and report["reason"] == "interrupted"
    assert _answers(report)["M1"] == "YES" and _answers(report)["M3"] == "NO"  # what ran is kept
    assert "interrupted" in (out / "report.md").read_text().lower()


def test_all_yes_exits_zero(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    checks = [c.id for c in CATALOGUE]
    body = "".join(
        f"@pytest.mark.decides({c!r})\ndef test_{c}(evidence):\n    evidence.add('seen {c}')\n\n\n" for c in checks
    )
    pytester.makepyfile(test_all="import pytest\n\n\n" + body)
    result = pytester.runpytest_subprocess("--report-dir", str(pytester.path / "out"))
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    validate_report(report)
    junit_agrees(pytester.path / "out", report)
    assert set(_answers(report).values()) == {"YES"} and report["answer"] == "YES"
    assert result.ret == pytest.ExitCode.OK
    assert "iam-harness seed: " in result.stdout.str()


def test_unknown_marker_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_x="import pytest\n\n@pytest.mark.decide('M1')\ndef test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--strict-markers")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'decide' not found in `markers`*"])
