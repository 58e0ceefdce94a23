"""What one authorisation decision costs: `PolicyEngine.can_i` on loaded grants, beside a query per decision.

    python -m bench.policy [--decisions N] [--queries N] [--seed S]

1. `can_i`: a principal whose grants are loaded (an Admin's, and a Viewer's), asked a seeded mix of the app's
   resource/action questions, allowed and denied; each call timed alone: p50 and p99 in microseconds (target
   under 10);
2. the naive baseline: the same questions answered by one SQL query each (does a role of this user in this
   organisation grant this permission?), on the embedded reference app's PostgreSQL over loopback: p50 and p99;
3. the ratio of the two.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

import httpx
import psycopg

from app.auth.identity import Identity, OrgRef
from app.auth.policy import PolicyEngine, Principal
from bench._embedded import reference_app
from harness.clerk.issuer import ActiveOrg, clerk_id

RESOURCES = ("contacts", "deals", "notes", "members", "roles", "dashboard")
ACTIONS = ("read", "write", "delete", "manage", "view")
NAIVE = """
SELECT EXISTS (
    SELECT 1
    FROM governance_user_roles ur
    JOIN governance_role_permissions rp ON rp.role_id = ur.role_id
    JOIN governance_permissions p ON p.id = rp.permission_id
    JOIN sys_external_identity e ON e.user_id = ur.user_id
    JOIN org_organisation o ON o.id = ur.org_id
    WHERE e.external_id = %s AND o.external_id = %s AND p.name = %s
)
"""


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _principal(role: str, granted: tuple[str, ...]) -> Principal:
    org = OrgRef(id=uuid.uuid4(), external_id="org_2bench", name="bench")
    return Principal(
        identity=Identity(uuid.uuid4(), "user_2bench", org), roles=(role,), grants={p: (role,) for p in granted}
    )


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    questions = [(rng.choice(ACTIONS), rng.choice(RESOURCES)) for _ in range(1024)]
    business = [f"{r}:{a}" for r in ("contacts", "deals", "notes") for a in ("read", "write", "delete")]
    admin = _principal("Admin", (*business, "members:read", "members:manage", "roles:read", "dashboard:view"))
    viewer = _principal("Viewer", ("contacts:read", "deals:read", "notes:read", "roles:read", "dashboard:view"))
    engine = PolicyEngine()
    print(f"seed {args.seed}; {args.decisions} decisions in-process, {args.queries} queries on loopback PostgreSQL")
    timings: list[float] = []
    allowed = 0
    clock = time.perf_counter_ns
    for n in range(args.decisions):
        action, resource = questions[n % len(questions)]
        who = admin if n % 2 else viewer
        began = clock()
        decision = engine.can_i(who, action, resource)
        timings.append((clock() - began) / 1000)
        allowed += decision.allowed
    empty = []
    for _ in range(10_000):
        began = clock()
        empty.append((clock() - began) / 1000)
    can_p50, can_p99 = statistics.median(timings), _p(timings, 0.99)
    print(
        f"can_i: p50 {can_p50:.2f} us, p99 {can_p99:.2f} us ({allowed} of {args.decisions} allowed; "
        f"the clock alone reads {statistics.median(empty):.2f} us)"
    )

    _, target, issuer = reference_app(args.seed)
    with target.running(issuer):
        org, sub = ActiveOrg(clerk_id("org", rng), "bench-policy"), clerk_id("user", rng)
        httpx.get(f"{target.base_url}/api/me", headers=issuer.mint(sub, org=org).headers, timeout=10).raise_for_status()
        assert target.database_url is not None
        naive: list[float] = []
        with psycopg.connect(target.database_url, autocommit=True) as conn:
            for n in range(args.queries):
                action, resource = questions[n % len(questions)]
                began = clock()
                conn.execute(NAIVE, (sub, org.id, f"{resource}:{action}"), prepare=True).fetchone()
                naive.append((clock() - began) / 1000)
    naive_p50, naive_p99 = statistics.median(naive), _p(naive, 0.99)
    print(f"one query per decision: p50 {naive_p50:.1f} us, p99 {naive_p99:.1f} us")
    print(f"ratio query/can_i: p50 {naive_p50 / can_p50:.0f}x, p99 {naive_p99 / can_p99:.0f}x")


if __name__ == "__main__":
    main()
