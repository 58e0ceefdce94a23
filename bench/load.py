"""The embedded reference app under load: two organisations' clients at once, then more than it can serve.

    python -m bench.load [--clients N] [--requests N] [--shed-clients N] [--shed-requests N] [--seed S]

Starts the embedded reference app (fresh PostgreSQL, loopback TCP), makes two organisations (each an admin
signing in with a Clerk organisation, then members added through the API, half of them Members and half Viewers),
and gives each organisation contacts of its own. Then:

1. load: `--clients` clients (half of each organisation), `--requests` requests in all, each client sending its
   share one after another: reads (its organisation's contacts, one contact, who-am-I), writes (a Member creates
   and changes contacts; a Viewer's write must be refused) and cross-organisation reads (another organisation's
   contact: it must be 404). Counted: 5xx, timeouts (no answer within 10 s), leaks (a cross-organisation read that
   is not 404), wrong answers (anything else not as expected); p50/p99 latency and throughput;
2. overload: `--shed-clients` clients at once, `--shed-requests` requests in all, where the app must shed what it
   cannot serve (503 with Retry-After) and never wedge: 0 timeouts, and `/health` answering 200 within 1 s of the
   load ending.

Each client is an asyncio task on one httpx.AsyncClient connection of its own (one event loop: the load
generator costs little beside the app's two cores). Every choice is seeded.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench._embedded import reference_app
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id

TIMEOUT_SECONDS = 10.0
TOKEN_TTL = 1800  # a session token outlives the bench
CONTACTS_PER_ORG = 20
HEALTH_WITHIN_SECONDS = 1.0


@dataclass
class Client:
    """One signed-in member of an organisation: its headers, its role, its own contacts and another's."""

    headers: dict[str, str]
    role: str
    own: list[str]
    foreign: list[str]


@dataclass
class Tally:
    """What one phase saw."""

    latencies: list[float] = field(default_factory=list)  # ms, answered requests
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    failed: int = 0  # no answer for another reason (reset, refused)
    leaks: int = 0
    wrong: list[str] = field(default_factory=list)
    retry_after: int = 0  # 503s carrying Retry-After
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    @property
    def shed(self) -> int:
        return self.statuses[503]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _org(
    http: httpx.AsyncClient, issuer: Issuer, rng: random.Random, key: str, members: int
) -> tuple[ActiveOrg, list[tuple[dict[str, str], str]], list[str]]:
    """An organisation: its admin (a first login naming a new Clerk organisation), `members` members added through
    the API (alternately Member and Viewer), and its contacts. Returns the org, (headers, role) per member (the
    admin first) and the contact ids."""
    org = ActiveOrg(clerk_id("org", rng), f"bench-{key}", "admin")
    admin = issuer.mint(clerk_id("user", rng), org=org, ttl=TOKEN_TTL).headers
    me = await http.get("/api/me", headers=admin)
    me.raise_for_status()
    people: list[tuple[dict[str, str], str]] = [(admin, "Admin")]
    for n in range(members):
        role = "Member" if n % 2 == 0 else "Viewer"
        sub = clerk_id("user", rng)
        added = await http.post("/api/members", headers=admin, json={"external_id": sub, "roles": [role]})
        added.raise_for_status()
        member_org = ActiveOrg(org.id, org.slug, "member")
        people.append((issuer.mint(sub, org=member_org, ttl=TOKEN_TTL).headers, role))
    contacts = []
    for n in range(CONTACTS_PER_ORG):
        made = await http.post("/api/contacts", headers=admin, json={"name": f"{key} contact {n}"})
        made.raise_for_status()
        contacts.append(str(made.json()["id"]))
    return org, people, contacts


async def _world(base_url: str, issuer: Issuer, rng: random.Random, clients: int) -> list[Client]:
    """`clients` clients, half of each of two organisations."""
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_SECONDS) as http:
        per_org = (clients + 1) // 2
        _, people1, contacts1 = await _org(http, issuer, rng, "one", per_org - 1)
        _, people2, contacts2 = await _org(http, issuer, rng, "two", clients - per_org - 1)
    out = [Client(h, role, contacts1, contacts2) for h, role in people1]
    out += [Client(h, role, contacts2, contacts1) for h, role in people2]
    rng.shuffle(out)
    return out


async def _one(http: httpx.AsyncClient, client: Client, rng: random.Random, tally: Tally) -> None:
    """One request of a mix: 50% reads, 25% writes, 25% cross-organisation reads; judged by what it must get."""
    roll = rng.random()
    if roll < 0.2:
        method, path, body, expected = "GET", "/api/contacts", None, {200}
    elif roll < 0.35:
        method, path, body, expected = "GET", f"/api/contacts/{rng.choice(client.own)}", None, {200}
    elif roll < 0.5:
        method, path, body, expected = "GET", "/api/me", None, {200}
    elif roll < 0.65:
        writes = client.role in ("Admin", "Member")
        method, path, body, expected = "POST", "/api/contacts", {"name": "load"}, {201} if writes else {403}
    elif roll < 0.75:
        writes = client.role in ("Admin", "Member")
        path = f"/api/contacts/{rng.choice(client.own)}"
        method, body, expected = "PATCH", {"notes": f"n{rng.getrandbits(16)}"}, {200} if writes else {403}
    else:
        method, path, body, expected = "GET", f"/api/contacts/{rng.choice(client.foreign)}", None, {404}
    began = time.perf_counter()
    try:
        answer = await http.request(method, path, json=body, headers=client.headers)
    except httpx.TimeoutException:
        tally.timeouts += 1
        return
    except httpx.TransportError:
        tally.failed += 1
        return
    tally.latencies.append((time.perf_counter() - began) * 1000)
    tally.statuses[answer.status_code] += 1
    if answer.status_code == 503:
        tally.retry_after += "retry-after" in answer.headers
        return
    if expected == {404} and answer.status_code != 404:
        tally.leaks += answer.status_code < 400
    if answer.status_code not in expected and len(tally.wrong) < 5:
        tally.wrong.append(f"{method} {path}: {answer.status_code}, expected {sorted(expected)}")


async def _phase(base_url: str, clients: list[Client], requests: int, seed: int) -> Tally:
    """Every client at once, each sending its share of `requests` one after another."""
    tally = Tally()
    shares = [requests // len(clients) + (n < requests % len(clients)) for n in range(len(clients))]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def run(n: int, client: Client) -> None:
        rng = random.Random(f"{seed}-{n}")
        async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_SECONDS, limits=limits) as http:
            for _ in range(shares[n]):
                await _one(http, client, rng, tally)

    began = time.perf_counter()
    deadline = TIMEOUT_SECONDS * (max(shares) + 2)  # every request of a client timing out, one after another
    await asyncio.wait_for(asyncio.gather(*(run(n, c) for n, c in enumerate(clients))), deadline)
    tally.seconds = time.perf_counter() - began
    return tally


async def _health_after(base_url: str) -> float | None:
    """Seconds until `/health` answers 200 once the load has ended, or None past the limit."""
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=HEALTH_WITHIN_SECONDS) as http:
        while (waited := time.perf_counter() - began) < 10 * HEALTH_WITHIN_SECONDS:
            try:
                if (await http.get("/health")).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(min(0.05, max(0.0, 10 * HEALTH_WITHIN_SECONDS - waited)))
    return None


def _report(name: str, clients: int, tally: Tally) -> None:
    statuses = ", ".join(f"{status} x{n}" for status, n in sorted(tally.statuses.items()))
    print(
        f"{name}: {clients} clients, {tally.answered + tally.timeouts + tally.failed} requests in {tally.seconds:.1f} s"
        f" = {tally.answered / tally.seconds:.0f} answered/s; p50 {_p(tally.latencies, 0.5):.1f} ms, "
        f"p99 {_p(tally.latencies, 0.99):.1f} ms"
    )
    print(
        f"  5xx (not 503): {tally.server_errors}; timeouts: {tally.timeouts}; no answer: {tally.failed}; "
        f"leaks: {tally.leaks}; shed (503): {tally.shed}, {tally.retry_after} with Retry-After; statuses: {statuses}"
    )
    for line in tally.wrong:
        print(f"  wrong: {line}")


async def _bench(args: argparse.Namespace, base_url: str, issuer: Issuer) -> None:
    rng = random.Random(args.seed)
    clients = await _world(base_url, issuer, rng, max(args.clients, args.shed_clients))
    load = await _phase(base_url, clients[: args.clients], args.requests, args.seed)
    _report("load", args.clients, load)
    health = await _health_after(base_url)
    print(f"  /health after the load: {'200 in %.0f ms' % (health * 1000) if health is not None else 'no 200'}")
    if not args.shed_clients:
        return
    shed = await _phase(base_url, clients[: args.shed_clients], args.shed_requests, args.seed + 1)
    _report("overload", args.shed_clients, shed)
    health = await _health_after(base_url)
    said = f"200 in {health * 1000:.0f} ms" if health is not None else f"no 200 within {10 * HEALTH_WITHIN_SECONDS} s"
    print(f"  /health after the overload: {said} (must be within {HEALTH_WITHIN_SECONDS * 1000:.0f} ms)")
    clean = load.server_errors + load.timeouts + load.failed + load.leaks + load.shed + len(load.wrong) == 0
    recovered = shed.timeouts == 0 and shed.leaks == 0 and health is not None and health <= HEALTH_WITHIN_SECONDS
    print(f"verdict: load {'clean' if clean else 'NOT clean'}; overload {'shed and recovered' if recovered else 'NOT'}")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--shed-clients", type=int, default=500)
    parser.add_argument("--shed-requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    _, target, issuer = reference_app(args.seed)
    print(f"seed {args.seed}; embedded reference app on loopback; app log {target.log_path}")
    with target.running(issuer):
        asyncio.run(_bench(args, target.base_url, issuer))


if __name__ == "__main__":
    main()
