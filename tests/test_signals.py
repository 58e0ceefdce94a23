"""`iam-harness run` stopped by SIGTERM or SIGINT at several moments: the embedded target and its PostgreSQL stop,
temporary data goes, the exit code is 128 + the signal, and the report written says INTERRUPTED."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.harness.report_support import validate_report

pytestmark = pytest.mark.e2e

STOP_SECONDS = 30  # how long a stopped run may take to clean up
# The PostgreSQL wheel's lock of its runtime directory, made on import and kept, as a cache is: not the run's data.
WHEEL_LOCK = "python_PostgresServer/.lockfile"


def _descendants(root: psutil.Process) -> set[psutil.Process]:
    try:
        return set(root.children(recursive=True))
    except psutil.NoSuchProcess:
        return set()


def _alive(processes: set[psutil.Process]) -> list[str]:
    out = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("after", [0.7, 4.0, 12.0], ids=["starting", "world", "scenarios"])
def test_a_signal_at_any_moment_leaves_nothing_behind(
    request: pytest.FixtureRequest, tmp_path: Path, signum: int, after: float
) -> None:
    # The run's temporary files (PostgreSQL's cluster, the mail) go here: a short path, as /tmp is, so that the
    # cluster's socket fits in it (else the PostgreSQL wheel puts the socket in a runtime directory it keeps).
    scratch = Path(tempfile.mkdtemp(prefix="sig-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    env = {**os.environ, "TMPDIR": str(scratch)}
    env.pop("DATABASE_URL", None)  # its own embedded PostgreSQL, which must go too
    run = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--seed", "5", "--report-dir", str(tmp_path / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    root = psutil.Process(run.pid)
    seen: set[psutil.Process] = set()
    deadline = time.monotonic() + after
    while time.monotonic() < deadline and run.poll() is None:
        seen |= _descendants(root)
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before the signal"
    seen |= _descendants(root)
    run.send_signal(signum)
    output, _ = run.communicate(timeout=STOP_SECONDS)
    assert run.returncode == 128 + signum, output[-3000:]
    assert f"{signal.Signals(signum).name}: stopping, cleaning up" in output
    time.sleep(0.5)  # what was told to stop has stopped; anything alive now was left behind
    assert not _alive(seen), f"left running: {_alive(seen)}\n{output[-2000:]}"
    left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.is_file() or not any(p.iterdir()))
    assert [p for p in left if not p.endswith(WHEEL_LOCK)] == [], f"left in TMPDIR: {left}"
    report_path = tmp_path / "out" / "report.json"
    if report_path.exists():  # stopped before the run began, nothing was written; after, what was says so
        report = json.loads(report_path.read_text())
        validate_report(report)
        assert report["answer"] == "INTERRUPTED" and report["reason"] == "interrupted"
        assert (tmp_path / "out" / "report.md").read_text().startswith("# iam-harness: INTERRUPTED")
    else:
        assert after < 4.0, f"a run stopped after {after} s wrote no report\n{output[-2000:]}"
