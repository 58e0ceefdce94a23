"""M1 and O2 in a real browser on the helpdesk practice target (tests/targets/helpdesk_app.py): FastAPI pages behind
the target's own sign-in form and an opaque cookie session, organisations named by slugs (`north`, `south`), the
denied page a role's, not a membership's: nothing like the reference app's Clerk pages. Its secure build comes out
YES; each page flaw turns its check NO with the verdict that names it, and the run never calls `DELETE /session`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.targets.catalog import serving_practice
from tests.targets.helpdesk_app import PAGE_FLAWS, PRACTICE

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 240
# flaw -> (the check it turns NO, what that check's evidence must say, the page check that stays YES)
CASES = {
    "login_cookie_path": ("M1", "M1 owner signs in on the form: loop", None),
    "forbidden_to_login": ("O2", "server-side loop /login -> /settings -> /login", "M1"),
    "desk_crash": ("M1", "M1 owner dashboard, v2 token: server error", "O2"),
}


def _run(flaws: frozenset[str], report_dir: Path) -> tuple[dict[str, Any], dict[str, list[str]], str]:
    app = PRACTICE.make_app(flaws)
    with serving_practice(PRACTICE, app) as base:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", "--target", base, "--config", str(PRACTICE.config),
             "--seed", "11", "--report-dir", str(report_dir), "-k", "dashboard"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
    assert PRACTICE.counts is not None and all(PRACTICE.counts(app).get(op, 0) == 0 for op in PRACTICE.never)
    path = report_dir / "report.json"
    assert path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(path.read_text())
    evidence = {c["id"]: c["evidence"] for c in report["checks"]}
    return {c["id"]: c["answer"] for c in report["checks"]}, evidence, done.stdout + done.stderr


def test_every_page_flaw_has_a_case() -> None:
    assert set(CASES) == PAGE_FLAWS


def test_the_secure_build_signs_in_on_its_form_and_answers_yes(tmp_path: Path) -> None:
    answers, evidence, output = _run(frozenset(), tmp_path)
    assert answers["M1"] == "YES" and answers["O2"] == "YES", output[-3000:]
    assert answers["O6"] == "N/A"  # declared: no operator console
    m1, o2 = "\n".join(evidence["M1"]), "\n".join(evidence["O2"])
    assert "M1 owner signs in on the form: opens /desk: loaded; then signs in on the form: loaded" in m1, m1
    assert "M1 wrong password on the form: signed out" in m1, m1
    assert "O2 member without access: error page" in o2 and "/settings [403, server]" in o2, o2


@pytest.mark.parametrize("flaw", sorted(CASES))
def test_each_page_flaw_turns_its_check_no_with_its_verdict(tmp_path: Path, flaw: str) -> None:
    check, named, stays = CASES[flaw]
    answers, evidence, output = _run(frozenset({flaw}), tmp_path)
    assert answers[check] == "NO", output[-3000:]
    assert any(named in line for line in evidence[check]), "\n".join(evidence[check])
    assert stays is None or answers[stays] == "YES", "\n".join(evidence[stays or check])
