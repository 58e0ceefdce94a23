"""The harness on a target it has never seen: another app, other paths, API keys and a login, configured by
file only. It finds the leak planted in it, and answers YES once the leak is gone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.targets.ledger_app import create_ledger_app
from tests.targets.serve import serving

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).parent / "targets" / "ledger.toml"


@contextmanager
def _serving(*, leaky: bool, **app_options: Any) -> Iterator[str]:
    with serving(create_ledger_app(leaky=leaky, **app_options), "/v2/status") as base:
        yield base


def _fuzz(base: str, report_dir: Path, *extra: str) -> dict[str, object]:
    return _run(base, report_dir, "-k", "fuzz", *extra)


def _run(base: str, report_dir: Path, *extra: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", base, "--config", str(CONFIG), "--seed", "7",
         "--report-dir", str(report_dir), *extra],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    path = report_dir / "report.json"
    assert path.exists(), done.stdout + done.stderr
    report: dict[str, object] = json.loads(path.read_text())
    return report


def _check(report: dict[str, object], check_id: str) -> dict[str, object]:
    checks = report["checks"]
    assert isinstance(checks, list)
    found: dict[str, object] = next(c for c in checks if c["id"] == check_id)
    return found


@pytest.mark.parametrize("leaky", [True, False], ids=["leak-planted", "leak-fixed"])
def test_planted_leak_is_found_and_only_it(tmp_path: Path, leaky: bool) -> None:
    with _serving(leaky=leaky) as base:
        report = _fuzz(base, tmp_path)
    m4, m3 = _check(report, "M4"), _check(report, "M3")
    assert m3["answer"] == "YES", m3  # owners write, auditors are refused every write, anonymous every call
    if leaky:
        assert m4["answer"] == "NO"
        evidence = json.dumps(m4)  # its evidence lines and its typed findings
        assert "GET /v2/ledgers/{ledger_id}" in evidence and "CrossOrgRead" in evidence, evidence
        findings = m4["findings"]
        assert isinstance(findings, list)
        assert not [f for f in findings if f["operation"] == "PUT /v2/ledgers/{ledger_id}"]  # none where it is right
    else:
        assert m4["answer"] == "YES", m4
        assert _check(report, "I3")["answer"] == "YES"  # every owner succeeds on its own ledgers
    coverage = report["coverage"]
    assert isinstance(coverage, list)
    assert {row["principal"] for row in coverage} >= {"north owner", "north auditor", "south auditor", "anonymous"}


def test_parallel_workers_give_the_same_answers(tmp_path: Path) -> None:
    answers = []
    for workers in ("0", "2"):
        with _serving(leaky=True) as base:
            report = _fuzz(base, tmp_path / workers, "--workers", workers)
        checks = report["checks"]
        assert isinstance(checks, list)
        answers.append({c["id"]: c["answer"] for c in checks})
    assert answers[0] == answers[1]
    assert answers[0]["M4"] == "NO" and answers[0]["M3"] == "YES"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the weak secret is planted
@pytest.mark.parametrize(
    ("app_options", "answer", "named"),
    [
        ({}, "YES", "forgeries on GET /v2/ledgers/"),
        ({"token_secret": "secret"}, "NO", "weak secret 'secret'"),
        ({"accept_none": True}, "NO", "forged by alg_none"),
    ],
    ids=["strong-secret", "weak-secret", "alg-none-accepted"],
)
def test_login_tokens_are_forged_from_the_real_ones(
    tmp_path: Path, app_options: dict[str, Any], answer: str, named: str
) -> None:
    """The ledger's login hands out its own JWTs: C1 re-signs the auditors' real tokens as an attacker would."""
    with _serving(leaky=False, **app_options) as base:
        report = _run(base, tmp_path, "-k", "authentication")
    c1 = _check(report, "C1")
    evidence = json.dumps(c1)  # its evidence lines and its typed findings
    assert c1["answer"] == answer, evidence
    assert named in evidence
    assert "north auditor's token sub swapped to south auditor's" in evidence
    if answer == "NO":
        assert "answered 200 on GET /v2/ledgers/" in evidence
        accepted = next(line for line in map(str, c1["evidence"]) if line.startswith("accepted forgery"))  # type: ignore[call-overload]
        assert accepted.rsplit(" ", 1)[-1].count(".") == 2  # the forged token itself, whole
