"""The harness on the practice targets of tests/targets/catalog.py: every planted flaw caught, with evidence naming
it, by a whole `iam-harness run`; every secure build without a single authorization finding, at five seeds.

Each target is a shape the reference app is not (Flask with integer workspaces and nested tasks, bare Werkzeug
with users as tenants and their own HS256 logins, FastAPI with team slugs and cookie sessions), described to the
harness by its config file alone.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.world import build_world
from harness.checks.findings import FindingKind
from harness.checks.fuzz import fuzz
from harness.clerk.issuer import Issuer
from harness.config.model import load_config
from harness.engine.schema import load_schema
from tests.targets.catalog import Flaw, PracticeTarget, practice_targets, serving_practice

pytestmark = pytest.mark.e2e

TARGETS = practice_targets()
RUN_TIMEOUT = 300
SECURE_SEEDS = (1, 2, 3, 4, 5)
# What a run may report on a secure build that says nothing against its authorization: coverage lost.
NOT_AUTHORIZATION = {FindingKind.UNANSWERED, FindingKind.BUDGET_EXHAUSTED, FindingKind.NOT_EXERCISED}


def _run(target: PracticeTarget, base: str, report_dir: Path) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--target", base, "--config", str(target.config), "--seed", "3",
         "--report-dir", str(report_dir), "-k", "fuzz or authentication"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    path = report_dir / "report.json"
    assert path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(path.read_text()), done.stdout + done.stderr


def _showing(report: dict[str, Any], flaw: Flaw) -> list[dict[str, Any]]:
    """The findings of the flaw's kind, on its operation, deciding its check."""
    return [
        f
        for c in report["checks"]
        for f in c["findings"]
        if f["kind"] == flaw.kind and f["operation"] == flaw.operation and flaw.check in f["checks"]
    ]


@pytest.mark.parametrize(
    ("target", "flaw"), [(t, f) for t in TARGETS for f in t.flaws], ids=lambda v: getattr(v, "name", None)
)
def test_each_planted_flaw_is_caught_with_its_evidence(tmp_path: Path, target: PracticeTarget, flaw: Flaw) -> None:
    app = target.make_app(frozenset({flaw.name}))
    with serving_practice(target, app) as base:
        code, report, output = _run(target, base, tmp_path)
    answers = {c["id"]: c["answer"] for c in report["checks"]}
    assert code == 1 and answers[flaw.check] == "NO", output[-3000:]
    showing = _showing(report, flaw)
    assert showing, f"no {flaw.kind} on {flaw.operation}: " + json.dumps(report["checks"])[:3000]
    assert any(flaw.evidence in f["detail"] for f in showing), [f["detail"] for f in showing]
    if target.counts is not None:
        counts = target.counts(app)
        assert all(counts.get(op, 0) == 0 for op in target.never), counts


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_each_secure_build_gives_no_authorization_finding_at_five_seeds(target: PracticeTarget) -> None:
    config = load_config(target.config)
    app = target.make_app(frozenset())
    with serving_practice(target, app) as base:
        schema = load_schema(config, base)
        for seed in SECURE_SEEDS:
            issuer = Issuer(issuer_url="https://clerk.test", authorized_party=base, rng=random.Random(seed))
            world = build_world(config, issuer, base, seed)
            assert world.problems == [], world.incomplete()
            result = fuzz(base, config, world, schema, seed)
            false = [f.line() for f in result.findings if f.kind not in NOT_AUTHORIZATION]
            assert false == [], f"seed {seed}: " + "; ".join(false[:5])
            assert result.run.stopped is None and not result.unexercised, (seed, result.run.stopped)
    if target.counts is not None:
        counts = target.counts(app)
        assert all(counts.get(op, 0) == 0 for op in target.never), counts
