"""The fuzz phase's throughput against plain schemathesis and against a plain httpx replay, on one app.

    python -m bench.fuzz [--cases N] [--seed S] [--full]

Starts the embedded reference app once and, on it and over the same loopback transport:
1. plain schemathesis: per operation, generate N cases and send each with `case.call` as the admin;
2. the harness's fuzz phase (`harness.checks.fuzz.fuzz`) over the same operations, N cases each, every principal;
3. a plain httpx loop replaying requests of the same shapes (the limit: no generation, no checks).
Prints requests per second for each and the ratios. `--full` also times a whole `iam-harness run
--workers 2 -k fuzz --fuzz-cases 50`, the full fuzz of every operation as every principal.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

from fixtures.world import build_world
from harness.checks.fuzz import fuzz
from harness.clerk.issuer import Issuer
from harness.config.model import load_config
from harness.config.reference import default_config_path
from harness.engine.schema import example_body, fill_path, operations
from harness.target.running import EmbeddedTarget, origin_of
from harness.target.schema import read_schema


def plain_schemathesis(
    base_url: str, schema: dict[str, Any], headers: dict[str, str], cases: int, seed: int
) -> tuple[int, float]:
    """Generate and send `cases` per operation the way schemathesis does on its own."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis.core.result import Ok

    loaded = schemathesis.openapi.from_dict(schema)
    sent = 0
    started = time.perf_counter()
    for result in loaded.get_all_operations():
        if not isinstance(result, Ok):
            continue
        operation = result.ok()

        @given(operation.as_strategy())
        @settings(
            max_examples=cases,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            deadline=None,
        )
        @hypothesis_seed(seed)
        def send(case: Any) -> None:
            nonlocal sent
            case.call(base_url=base_url, headers=headers)
            sent += 1

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            send()
    return sent, time.perf_counter() - started


def plain_replay(base_url: str, schema: dict[str, Any], headers: dict[str, str], total: int) -> tuple[int, float]:
    """Send `total` requests of the schema's shapes in a bare httpx loop: the transport's and server's limit."""
    shapes = [
        (op.method, fill_path(op.path, "00000000-0000-4000-8000-000000000000"), example_body(schema, op))
        for op in operations(schema)
    ]
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for n in range(total):
            method, path, body = shapes[n % len(shapes)]
            client.request(method, path, json=body)
    return total, time.perf_counter() - started


def full_run(seed: int) -> tuple[float, str]:
    """Time `iam-harness run --workers 2 -k fuzz --fuzz-cases 50`; the answers of the checks the fuzz decides."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        command = [sys.executable, "-m", "harness", "run", "--workers", "2", "-k", "fuzz", "--fuzz-cases", "50"]
        subprocess.run([*command, "--seed", str(seed), "--report-dir", tmp], capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        report = Path(tmp) / "report.json"
        if not report.exists():
            return elapsed, "no report"
        checks = json.loads(report.read_text())["checks"]
        # Only the fuzz scenarios ran: the checks they decide are the answer (the others were not exercised).
        answer = " ".join(f"{c['id']}={c['answer']}" for c in checks if c["id"] in {"M3", "O4", "M4", "I3"})
    return elapsed, answer


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    config = load_config(default_config_path())
    target = EmbeddedTarget(config, faults=(), log_path=Path(tempfile.mkdtemp()) / "app.log")
    issuer = Issuer(issuer_url=config.issuer, authorized_party=origin_of(target.base_url), rng=random.Random(args.seed))
    print(f"seed {args.seed}; {args.cases} cases per operation; embedded reference app on loopback")
    with target.running(issuer):
        world = build_world(config, issuer, target.base_url, args.seed)
        schema = read_schema(config, target.base_url)
        admin = world.org("org1").owner.credentials.headers()
        st_sent, st_s = plain_schemathesis(target.base_url, schema, admin, args.cases, args.seed)
        result = fuzz(target.base_url, config, world, schema, args.seed, cases=args.cases)
        replay_sent, replay_s = plain_replay(target.base_url, schema, admin, min(result.requests, 2000))
    st_rate, fuzz_rate, replay_rate = st_sent / st_s, result.requests / result.seconds, replay_sent / replay_s
    print(f"plain schemathesis : {st_sent:6d} requests in {st_s:6.2f} s = {st_rate:7.1f} req/s")
    print(f"harness fuzz phase : {result.requests:6d} requests in {result.seconds:6.2f} s = {fuzz_rate:7.1f} req/s "
          f"({len(result.operations)} operations, {len(world.principals())} principals)")  # fmt: skip
    print(f"plain httpx replay : {replay_sent:6d} requests in {replay_s:6.2f} s = {replay_rate:7.1f} req/s")
    print(f"ratio fuzz / schemathesis = {fuzz_rate / st_rate:.2f}x (target >= 3x)")
    print(f"ratio fuzz / httpx replay = {fuzz_rate / replay_rate:.2f} (1.0 is the limit)")
    if args.full:
        elapsed, answer = full_run(args.seed)
        print(f"full fuzz, 50 cases, all principals, 2 workers: {elapsed:.1f} s (target < 45 s): {answer}")


if __name__ == "__main__":
    main()
