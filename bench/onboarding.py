"""Onboarding's costs on the embedded reference app: webhook events applied per second, and first-login latency.

    python -m bench.onboarding [--events N] [--users N] [--seed S]

Starts the embedded reference app once (fresh PostgreSQL, loopback TCP), then:
1. webhooks: N Clerk-shaped events (organisations, renames, users, memberships), svix-signed, sent by 8 senders
   at a time, then the same N again with their svix ids (duplicates, which the app must recognise and skip);
   events per second for each pass, and their ratio;
2. first logins: N new users, each sending their first request at the same moment (released by a barrier), timed
   one by one: p50 and p99; then the same users' next request, again all at once (already provisioned): p50 and
   p99; the ratio of the two is what to read (what provisioning adds under a burst of new users).
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench._embedded import reference_app
from harness.clerk.issuer import clerk_id
from harness.clerk.webhooks import ClerkWebhooks, membership_data, organization_data

SENDERS = 8


def _story(rng: random.Random, events: int) -> list[tuple[str, dict[str, Any], str]]:
    """`events` events: per organisation, created, renamed, and two users with their memberships."""
    out: list[tuple[str, dict[str, Any], str]] = []
    while len(out) < events:
        org_id = clerk_id("org", rng)
        first = organization_data(org_id, f"bench {org_id[-6:]}", 1_000)
        out.append(("organization.created", first, f"msg_{rng.getrandbits(96):024x}"))
        out.append(
            (
                "organization.updated",
                organization_data(org_id, f"bench {org_id[-6:]} b", 2_000),
                f"msg_{rng.getrandbits(96):024x}",
            )
        )
        for role in ("org:admin", "org:member"):
            sub = clerk_id("user", rng)
            out.append(("user.created", {"object": "user", "id": sub}, f"msg_{rng.getrandbits(96):024x}"))
            data = membership_data(clerk_id("orgmem", rng), first, sub, role, 1_000)
            out.append(("organizationMembership.created", data, f"msg_{rng.getrandbits(96):024x}"))
    return out[:events]


def _send_all(sender: ClerkWebhooks, story: list[tuple[str, dict[str, Any], str]]) -> tuple[float, int]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        statuses = list(pool.map(lambda e: sender.send(e[0], e[1], msg_id=e[2]).status_code, story))
    return time.perf_counter() - started, sum(1 for s in statuses if not 200 <= s < 300)


def _burst(base_url: str, headers: list[dict[str, str]], path: str) -> tuple[list[float], int]:
    """Every user's request at the same moment; each one's latency in ms, and how many were not 2xx."""
    start = threading.Barrier(len(headers))

    def one(sent: dict[str, str]) -> tuple[float, int]:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            start.wait(timeout=30)
            began = time.perf_counter()
            status = client.get(path, headers=sent).status_code
            return (time.perf_counter() - began) * 1000, status

    with ThreadPoolExecutor(max_workers=len(headers)) as pool:
        seen = list(pool.map(one, headers))
    return [ms for ms, _ in seen], sum(1 for _, status in seen if not 200 <= status < 300)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    config, target, issuer = reference_app(args.seed)
    print(f"seed {args.seed}; embedded reference app on loopback; {SENDERS} webhook senders; {args.users} users")
    assert config.webhooks is not None and config.identity is not None
    with target.running(issuer):
        assert target.webhook_secret is not None
        sender = ClerkWebhooks(target.base_url, config.webhooks.clerk, target.webhook_secret, issuer.kid)
        story = _story(rng, args.events)
        fresh_s, fresh_bad = _send_all(sender, story)
        again_s, again_bad = _send_all(sender, story)
        print(
            f"webhooks: {len(story)} events applied in {fresh_s:.2f} s = {len(story) / fresh_s:.0f} events/s "
            f"({fresh_bad} not 2xx)"
        )
        print(
            f"webhooks: the same {len(story)} again (duplicates) in {again_s:.2f} s = {len(story) / again_s:.0f} "
            f"events/s ({again_bad} not 2xx); ratio duplicate/new {fresh_s / again_s:.2f}x faster"
        )
        headers = [issuer.mint(clerk_id("user", rng)).headers for _ in range(args.users)]
        first, first_bad = _burst(target.base_url, headers, config.identity.me)
        known, known_bad = _burst(target.base_url, headers, config.identity.me)
    p50_first, p99_first = statistics.median(first), _p(first, 0.99)
    p50_known, p99_known = statistics.median(known), _p(known, 0.99)
    print(f"first login, {args.users} new users at once: p50 {p50_first:.1f} ms, p99 {p99_first:.1f} ms", end="")
    print(f" ({first_bad} not 2xx)")
    print(f"next request, the same users at once:   p50 {p50_known:.1f} ms, p99 {p99_known:.1f} ms", end="")
    print(f" ({known_bad} not 2xx)")
    print(f"ratio first/next: p50 {p50_first / p50_known:.2f}, p99 {p99_first / p99_known:.2f}")


if __name__ == "__main__":
    main()
