"""The embedded target starts the app on loopback and stops it, and its database, on Ctrl-C too."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e  # starts the app and PostgreSQL, then signals them


def _app_port(log: Path, output: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        if log.exists() and "Uvicorn running" in log.read_text(errors="replace"):
            found = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"the app never started: {output.read_text(errors='replace')[-2000:]}")


def _postgres_servers_since(started: float) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "create_time"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and "iam-harness-pg-" in cmdline and proc.info["create_time"] >= started:
            found.append(proc)
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_app_and_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the embedded PostgreSQL this time
    output = tmp_path / "output.txt"
    with output.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", "--report-dir", str(tmp_path), "-k", "dashboard"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    started = time.time() - 1
    try:
        port = _app_port(tmp_path / "app.log", output, time.monotonic() + 60)
        children = psutil.Process(run.pid).children(recursive=True)
        children += _postgres_servers_since(started)  # pg_ctl detaches the server from the run
        assert any(p.name() == "postgres" for p in children), children
        assert _listening(port)
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) != 0
    finally:
        if run.poll() is None:
            run.kill()
    assert not _listening(port)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], alive
    assert "Traceback" not in output.read_text()
