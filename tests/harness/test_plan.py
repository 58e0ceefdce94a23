"""`iam-harness plan`: what a run would call, as whom, and what it never calls, told before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.model import load_config
from harness.engine.plan import plan, plan_summary
from harness.engine.schema import load_schema

LIBRARY = Path(__file__).parents[1] / "targets" / "library.toml"


def test_the_plan_names_every_operation_and_what_is_never_called() -> None:
    config = load_config(LIBRARY)
    schema = load_schema(config, None)
    planned = {p.operation: p for p in plan(config, schema)}
    assert planned["POST /admin/reset"].never and not planned["POST /admin/reset"].principals
    loans = planned["GET /loans/{loan_id}"]
    assert "north reader" in loans.principals and "anonymous" in loans.principals
    assert {"role", "foreign-id", "malformed-id"} <= {f.value for f in loans.families}
    assert "never called: POST /admin/reset" in plan_summary(config, schema)


@pytest.mark.e2e  # the CLI in a subprocess
def test_the_plan_command_sends_nothing_for_a_schema_file() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--config", str(LIBRARY)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "POST /admin/reset" in done.stdout and "NEVER" in done.stdout
    assert "plan: " in done.stdout.splitlines()[-1]
