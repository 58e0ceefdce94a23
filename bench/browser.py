"""Browser figures: how soon a 400 ms client-side loop is called, and the wall time of all browser scenarios.

    python -m bench.browser [--loops N] [--seed S] [--skip-runs]

1. Time to verdict: a loopback page pair shaped as the incident (the denied page sends to sign-in after 400 ms,
   sign-in sends a signed-in browser straight back), opened N times; prints the median time from the first
   navigation to the loop verdict and its ratio to the 1.5 s target.
2. Wall time of `iam-harness run -k dashboard` (M1, O2, O6 against the embedded reference app) with one worker
   and with two, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.browser.driver import Landmarks, browser, visit
from harness.browser.model import Verdict

TARGET_MS = 1500.0
PAGES = {
    "/dashboard": (
        403,
        '<main data-testid="denied">Denied</main><script>setTimeout(()=>location.assign("/sign-in"),400)</script>',
    ),
    "/sign-in": (200, '<script>location.assign("/dashboard")</script>'),
}


class _Incident(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = PAGES.get(self.path, (404, "not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


def time_to_verdict(loops: int) -> list[float]:
    """Milliseconds from the first navigation to the loop verdict, per visit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Incident)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/dashboard"
    landmarks = Landmarks(("dashboard", "[data-testid=dashboard]"), {"denied": "[data-testid=denied]"}, "/sign-in")
    found = []
    try:
        with browser() as chromium:
            for _ in range(loops):
                seen = visit(chromium, url, cookies={}, landmarks=landmarks)
                if seen.verdict is not Verdict.LOOP or seen.loop is None:
                    raise SystemExit(f"expected a loop, got {seen.verdict}: {seen.trail()}")
                found.append(seen.loop.detected_ms - seen.navigations[0].at_ms)
    finally:
        server.shutdown()
        server.server_close()
    return found


def browser_run(workers: int, seed: int) -> tuple[float, str]:
    """Wall time and answer of the browser scenarios against the embedded reference app."""
    with tempfile.TemporaryDirectory(prefix="iam-bench-") as tmp:
        started = time.perf_counter()
        command = [sys.executable, "-m", "harness", "run", "--seed", str(seed), "--report-dir", tmp, "-k", "dashboard"]
        if workers > 1:
            command += ["--workers", str(workers)]
        subprocess.run(command, check=False, capture_output=True)
        elapsed = time.perf_counter() - started
        report = Path(tmp) / "report.json"
        checks = json.loads(report.read_text())["checks"] if report.exists() else []
        answers = ", ".join(f"{c['id']} {c['answer']}" for c in checks if c["id"] in {"M1", "O2", "O6"})
    return elapsed, answers or "no report"


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-runs", action="store_true", help="only the time to verdict")
    args = parser.parse_args()
    print(f"seed {args.seed}")
    times = time_to_verdict(args.loops)
    median = statistics.median(times)
    print(f"400 ms client-side loop called after {', '.join(f'{t:.0f}' for t in times)} ms")
    print(f"  median {median:.0f} ms; target {TARGET_MS:.0f} ms; ratio {median / TARGET_MS:.2f}")
    if args.skip_runs:
        return
    one, answers = browser_run(1, args.seed)
    print(f"browser scenarios, one worker: {one:.1f} s ({answers})")
    two, answers = browser_run(2, args.seed)
    print(f"browser scenarios, two workers: {two:.1f} s ({answers}); ratio two/one {two / one:.2f}")


if __name__ == "__main__":
    main()
