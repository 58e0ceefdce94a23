"""What one authenticated request costs on the embedded reference app, beside `/health` on the same server.

    python -m bench.request [--requests N] [--seed S]

Starts the embedded reference app (fresh PostgreSQL, loopback TCP), signs in one member of an organisation holding
a few contacts, then sends N requests of each kind one after another on one keep-alive connection, interleaved
(so that drift in the machine's load touches each kind alike): `GET /health` (the database pinged), `GET /api/me`
and `GET /api/contacts` (the session verified, identity, membership, grants and the row-level security context
resolved, then the query). Prints p50 and p99 of each, and the ratio of the authenticated ones to `/health`
(target: within 2x).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import httpx

from bench._embedded import reference_app
from harness.clerk.issuer import ActiveOrg, clerk_id

WARMUP = 50
TOKEN_TTL = 1800
PATHS = ("/health", "/api/me", "/api/contacts")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    _, target, issuer = reference_app(args.seed)
    print(f"seed {args.seed}; embedded reference app on loopback; {args.requests} requests of each kind, one client")
    timings: dict[str, list[float]] = {path: [] for path in PATHS}
    with target.running(issuer), httpx.Client(base_url=target.base_url, timeout=10) as http:
        org = ActiveOrg(clerk_id("org", rng), "bench-request", "admin")
        admin = issuer.mint(clerk_id("user", rng), org=org, ttl=TOKEN_TTL).headers
        http.get("/api/me", headers=admin).raise_for_status()
        for n in range(10):
            http.post("/api/contacts", headers=admin, json={"name": f"contact {n}"}).raise_for_status()
        sub = clerk_id("user", rng)
        http.post("/api/members", headers=admin, json={"external_id": sub, "roles": ["Member"]}).raise_for_status()
        member = issuer.mint(sub, org=ActiveOrg(org.id, org.slug, "member"), ttl=TOKEN_TTL).headers
        for n in range(WARMUP + args.requests):
            for path in PATHS:
                began = time.perf_counter()
                answer = http.get(path, headers=member if path != "/health" else None)
                elapsed = (time.perf_counter() - began) * 1000
                if answer.status_code != 200:
                    raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
                if n >= WARMUP:
                    timings[path].append(elapsed)
    health = statistics.median(timings["/health"]), _p(timings["/health"], 0.99)
    for path in PATHS:
        p50, p99 = statistics.median(timings[path]), _p(timings[path], 0.99)
        ratio = "" if path == "/health" else f"; {p50 / health[0]:.2f}x /health at p50, {p99 / health[1]:.2f}x at p99"
        print(f"GET {path:<14} p50 {p50:.2f} ms, p99 {p99:.2f} ms{ratio}")


if __name__ == "__main__":
    main()
