"""The pytest plugin, run with pytester: markers, evidence, the report, and the exit status."""

from __future__ import annotations

import json

import pytest

from harness.checks.catalogue import CATALOGUE

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


def test_unmarked():
    pass
"""


def _report(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, object]]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_scenarios=SCENARIOS)
    result = pytester.runpytest_subprocess("--report-dir", str(pytester.path / "out"), "--seed", "5", *args)
    return result, json.loads((pytester.path / "out" / "report.json").read_text())


def _answers(report: dict[str, object]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["id"]: c["answer"] for c in checks}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_report_decides_from_outcomes(pytester: pytest.Pytester, workers: list[str]) -> None:
    result, report = _report(pytester, *workers)
    answers = _answers(report)
    assert answers["M1"] == "YES"
    assert answers["M2"] == "NO"  # passed, but with zero evidence
    assert answers["M3"] == "NO" and answers["O4"] == "NO"
    assert answers["O3"] == "NO"  # skipped: not exercised
    assert answers["M4"] == "NO"  # nobody decided it
    assert report["seed"] == 5 and report["answer"] == "NO"
    checks = report["checks"]
    assert isinstance(checks, list)
    m3 = next(c for c in checks if c["id"] == "M3")["evidence"]
    assert m3[0].endswith("test_fails: 1 operation not refused")
    assert "GET /x -> 200" in m3 and "server log: ERROR stub: sqlstate=22P02" in m3
    assert any(line.startswith("repro: pytest 'test_scenarios.py::test_fails' --seed 5") for line in m3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "iam-harness: NO" in result.stdout.str()


def test_all_yes_exits_zero(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    checks = [c.id for c in CATALOGUE]
    body = "".join(
        f"@pytest.mark.decides({c!r})\ndef test_{c}(evidence):\n    evidence.add('seen {c}')\n\n\n" for c in checks
    )
    pytester.makepyfile(test_all="import pytest\n\n\n" + body)
    result = pytester.runpytest_subprocess("--report-dir", str(pytester.path / "out"))
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert set(_answers(report).values()) == {"YES"} and report["answer"] == "YES"
    assert result.ret == pytest.ExitCode.OK
    assert "iam-harness seed: " in result.stdout.str()


def test_unknown_marker_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_x="import pytest\n\n@pytest.mark.decide('M1')\ndef test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--strict-markers")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'decide' not found in `markers`*"])
