"""Token throughput: the harness's minting against plain `jwt.encode`, the app's verification against plain
`jwt.decode`, with the same key, and the JWKS fetches of the app's key cache under forged kids, in one run.

    python -m bench.tokens [--n 2000] [--jwks-n 10000] [--forged 0.1] [--seed 1]

Prints tokens per second for each and the ratios (targets: minting within 1.2x of plain pyjwt,
verification within 1.5x), then how many times the app fetched a real loopback JWKS while verifying a
seeded mix of valid tokens and tokens with unknown kids (target: one JWKS fetch per cache period), and
the same with the `jwks_refetch_every_unknown_kid` fault for contrast; last, how long the offline search for a
token's common HMAC secret takes when nothing matches (target: under a second).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from app.auth.keys import JwksKeys, cache_seconds
from app.auth.token import InvalidToken, TokenVerifier
from harness.clerk.attacks import common_secrets, crack
from harness.clerk.issuer import ActiveOrg, Issuer, new_key
from harness.clerk.jwks import JWKS_MAX_AGE, JwksServer

ISSUER = "https://iam-harness-12.clerk.accounts.dev"
AZP = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class JwksRun:
    """What one run of verifications against a JWKS URL cost the issuer."""

    fetches: int
    elapsed: float
    cache_period: float

    @property
    def per_period(self) -> float:
        """Fetches per cache period of the run (a run shorter than one period counts as one)."""
        return self.fetches / max(1, math.ceil(self.elapsed / self.cache_period))


def _rate(n: int, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        work()
    return n / (time.perf_counter() - started)


def _mix(issuer: Issuer, n: int, forged_share: float, seed: int) -> list[str]:
    """`n` tokens, seeded: valid ones, and a `forged_share` of them signed by another key under a kid nobody issued."""
    rng = random.Random(seed)
    valid = issuer.mint("user_2abc", org=ActiveOrg("org_2abc", "acme"), ttl=3600)
    attacker = new_key()
    alphabet = string.ascii_letters + string.digits
    tokens = []
    for _ in range(n):
        if rng.random() < forged_share:
            kid = "ins_" + "".join(rng.choice(alphabet) for _ in range(27))
            tokens.append(jwt.encode(valid.claims, attacker, algorithm="RS256", headers={"kid": kid, "typ": "JWT"}))
        else:
            tokens.append(valid.jwt)
    return tokens


def _jwks_run(issuer: Issuer, tokens: list[str], *, fault: bool) -> JwksRun:
    """Verify `tokens` with keys from a loopback JWKS server; count its fetches."""
    server = JwksServer(issuer, max_age=JWKS_MAX_AGE)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        keys = JwksKeys(server.url, refetch_every_unknown_kid=fault)
        verifier = TokenVerifier(keys=keys, issuer=ISSUER, authorized_parties=(AZP,))
        started = time.perf_counter()
        for token in tokens:
            with contextlib.suppress(InvalidToken):
                verifier.verify(token)
        elapsed = time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return JwksRun(server.count, elapsed, cache_seconds(f"public, max-age={server.max_age}"))


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="tokens minted and verified for each rate")
    parser.add_argument("--jwks-n", type=int, default=10_000, help="verifications against the JWKS URL")
    parser.add_argument("--forged", type=float, default=0.1, help="share of those with an unknown kid")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    issuer = Issuer(issuer_url=ISSUER, authorized_party=AZP, rng=random.Random(args.seed))
    org = ActiveOrg("org_2abc", "acme")
    key = issuer.keys[-1][1]
    claims = issuer.mint("user_2abc", org=org).claims
    headers = {"kid": issuer.kid, "typ": "JWT"}
    plain_mint = _rate(args.n, lambda: jwt.encode(claims, key, algorithm="RS256", headers=headers))
    harness_mint = _rate(args.n, lambda: issuer.mint("user_2abc", org=org))
    token = issuer.mint("user_2abc", org=org, ttl=3600).jwt
    public = key.public_key()
    verifier = TokenVerifier(public_key_pem=issuer.public_pem, issuer=ISSUER, authorized_parties=(AZP,))
    plain_verify = _rate(args.n, lambda: jwt.decode(token, public, algorithms=["RS256"], issuer=ISSUER))
    app_verify = _rate(args.n, lambda: verifier.verify(token))
    tokens = _mix(issuer, args.jwks_n, args.forged, args.seed)
    healthy = _jwks_run(issuer, tokens, fault=False)
    faulty = _jwks_run(issuer, tokens, fault=True)
    print(f"{args.n} tokens each, RSA-2048, one process")
    print(f"mint   plain jwt.encode : {plain_mint:8.0f}/s   harness Issuer.mint  : {harness_mint:8.0f}/s   "
          f"cost ratio {plain_mint / harness_mint:.2f}x (target <= 1.2x)")  # fmt: skip
    print(f"verify plain jwt.decode : {plain_verify:8.0f}/s   app TokenVerifier    : {app_verify:8.0f}/s   "
          f"cost ratio {plain_verify / app_verify:.2f}x (target <= 1.5x)")  # fmt: skip
    print(f"jwks   {args.jwks_n} verifications by CLERK_JWKS_URL, {args.forged:.0%} of them with unknown kids "
          f"(seed {args.seed}); cache period {healthy.cache_period:.0f} s (the JWKS's max-age)")  # fmt: skip
    print(f"       app                            : {healthy.fetches:5d} fetches in {healthy.elapsed:5.2f} s   "
          f"{healthy.per_period:.2f} fetches per cache period (target: one JWKS fetch per cache period)")  # fmt: skip
    print(f"       jwks_refetch_every_unknown_kid : {faulty.fetches:5d} fetches in {faulty.elapsed:5.2f} s   "
          f"{faulty.per_period:.2f} fetches per cache period")  # fmt: skip
    strong = jwt.encode({"sub": "alice"}, "".join(random.Random(args.seed).choices(string.ascii_letters, k=40)))
    started = time.perf_counter()
    assert crack(strong) is None  # the worst case: every candidate tried
    searched = time.perf_counter() - started
    print(f"crack  offline weak-secret search of an HS256 token: {len(common_secrets())} secrets tried in "
          f"{searched:.2f} s (target: under a second)")  # fmt: skip


if __name__ == "__main__":
    main()
