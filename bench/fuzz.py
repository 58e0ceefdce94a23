"""The fuzz phase's throughput and its own CPU cost, against plain schemathesis and a plain httpx replay.

    python -m bench.fuzz [--cases N] [--seed S] [--full]

Starts the embedded reference app once and, on it and over the same loopback transport:
1. plain schemathesis: per operation, generate N cases and send each with `case.call` as the admin;
2. the harness's fuzz phase (`harness.checks.fuzz.fuzz`) over the same operations, N cases each, every principal;
3. a plain httpx loop replaying requests of the same shapes (the limit: no generation, no checks).
Prints requests per second for each, the ratios, and each one's CPU time per request in this process (the
app runs in another process, so this is the client's own cost). Then the fuzz phase and the replay again
against a target that answers instantly (an in-process transport): the harness's own limit in req/s.
`--full` also times a whole `iam-harness run --workers 2 -k fuzz --fuzz-cases 50`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

from bench._embedded import reference_app
from fixtures.world import build_world
from harness.checks.fuzz import fuzz
from harness.engine.schema import ApiSchema, example_body, fill_path, load_schema

BASE_INSTANT = "http://instant.invalid"


def plain_schemathesis(
    base_url: str, schema: ApiSchema, headers: dict[str, str], cases: int, seed: int
) -> tuple[int, float]:
    """Generate and send `cases` per operation the way schemathesis does on its own."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis.core.result import Ok

    loaded = schemathesis.openapi.from_dict(schema.document)
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


def plain_replay(base_url: str, schema: ApiSchema, headers: dict[str, str], total: int) -> tuple[int, float]:
    """Send `total` requests of the schema's shapes in a bare httpx loop: the transport's and server's limit."""
    shapes = [
        (op.method, fill_path(op.path, "00000000-0000-4000-8000-000000000000"), example_body(op))
        for op in schema.operations
    ]
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for n in range(total):
            method, path, body = shapes[n % len(shapes)]
            client.request(method, path, json=body)
    return total, time.perf_counter() - started


def _instant(request: httpx.Request) -> httpx.Response:
    """A target that answers at once, so that only the client's own work is timed."""
    return httpx.Response(200, json={"id": "00000000-0000-4000-8000-000000000000"})


def _line(label: str, sent: int, seconds: float, cpu: float) -> str:
    return (
        f"{label:<28}: {sent:6d} requests in {seconds:6.2f} s = {sent / seconds:7.1f} req/s; "
        f"{1000 * cpu / sent:6.3f} ms CPU per request"
    )


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
    config, target, issuer = reference_app(args.seed)
    print(f"seed {args.seed}; {args.cases} cases per operation; embedded reference app on loopback")
    with target.running(issuer):
        world = build_world(config, issuer, target.base_url, args.seed)
        schema = load_schema(config, target.base_url)
        admin = world.org("org1").owner.credentials.headers()
        cpu = time.process_time()
        st_sent, st_s = plain_schemathesis(target.base_url, schema, admin, args.cases, args.seed)
        st_cpu, cpu = time.process_time() - cpu, time.process_time()
        result = fuzz(target.base_url, config, world, schema, args.seed, cases=args.cases)
        fuzz_cpu, cpu = time.process_time() - cpu, time.process_time()
        replay_sent, replay_s = plain_replay(target.base_url, schema, admin, min(result.requests, 2000))
        replay_cpu = time.process_time() - cpu
    cpu = time.process_time()
    instant = fuzz(
        BASE_INSTANT, config, world, schema, args.seed, cases=args.cases, transport=httpx.MockTransport(_instant)
    )
    instant_cpu, cpu = time.process_time() - cpu, time.process_time()
    started = time.perf_counter()
    with httpx.Client(base_url=BASE_INSTANT, headers=admin, transport=httpx.MockTransport(_instant)) as client:
        shapes = [(op.method, fill_path(op.path, "0"), example_body(op)) for op in schema.operations]
        for n in range(instant.requests):
            method, path, body = shapes[n % len(shapes)]
            client.request(method, path, json=body)
    bare_s, bare_cpu = time.perf_counter() - started, time.process_time() - cpu
    fuzz_rate, st_rate, replay_rate = result.requests / result.seconds, st_sent / st_s, replay_sent / replay_s
    print(_line("plain schemathesis", st_sent, st_s, st_cpu))
    print(_line("harness fuzz phase", result.requests, result.seconds, fuzz_cpu)
          + f" ({len(result.operations)} operations, {len(world.principals())} principals)")  # fmt: skip
    print(_line("plain httpx replay", replay_sent, replay_s, replay_cpu))
    print(f"ratio fuzz / schemathesis = {fuzz_rate / st_rate:.2f}x in req/s, "
          f"{(fuzz_cpu / result.requests) / (st_cpu / st_sent):.2f}x in CPU per request")  # fmt: skip
    print(f"ratio fuzz / httpx replay = {fuzz_rate / replay_rate:.2f} in req/s (1.0 is the limit), "
          f"{(fuzz_cpu / result.requests) / (replay_cpu / replay_sent):.2f}x in CPU per request")  # fmt: skip
    print(_line("instant target, fuzz phase", instant.requests, instant.seconds, instant_cpu))
    print(_line("instant target, bare httpx", instant.requests, bare_s, bare_cpu))
    print(f"the harness's own limit: {instant.requests / instant.seconds:.0f} req/s on an instant target")
    if args.full:
        elapsed, answer = full_run(args.seed)
        print(f"full fuzz, 50 cases, all principals, 2 workers: {elapsed:.1f} s (target < 45 s): {answer}")


if __name__ == "__main__":
    main()
