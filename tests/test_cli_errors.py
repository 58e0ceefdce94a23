"""A run that cannot start says so in one line, with the exit code of its kind: no pytest tracebacks, no table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 120


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", "--seed", "1", "--report-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--faults", "nonsense"], 2, "APP_FAULTS: unknown fault 'nonsense'"),
        (["--faults", "nonsense", "--workers", "2"], 2, "APP_FAULTS: unknown fault 'nonsense'"),
        (["--target", "http://127.0.0.1:9"], 3, "http://127.0.0.1:9/health did not answer 200 in time"),
    ],
    ids=["refused-config", "refused-config-parallel", "unreachable"],
)
def test_a_run_that_cannot_start_says_one_line(tmp_path: Path, args: list[str], code: int, said: str) -> None:
    done = _run(tmp_path, *args)
    output = done.stdout + done.stderr
    assert done.returncode == code, output[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("iam-harness: ")]
    assert len(errors) == 1 and said in errors[0], output[-2000:]
    assert "Traceback" not in output and "ERROR " not in output and "│" not in output, output[-2000:]
    assert len(output.splitlines()) <= 10, output
    assert (tmp_path / "report.json").exists()  # the report says it too


def test_the_embedded_app_starts_from_a_directory_holding_an_app_folder(tmp_path: Path) -> None:
    """The working directory's own `app` package (a user's project) is never the one the embedded target runs."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "__main__.py").write_text("raise SystemExit('the wrong app')\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--seed",
            "1",
            "--report-dir",
            str(tmp_path / "out"),
            "-k",
            "first_user",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        cwd=tmp_path,
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["error"] is None and "the wrong app" not in done.stdout + done.stderr, done.stderr[-2000:]
    assert {c["id"]: c["answer"] for c in report["checks"]}["M2"] == "YES"
