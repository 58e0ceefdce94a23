"""Token throughput: the harness's minting against plain `jwt.encode`, the app's verification against plain
`jwt.decode`, with the same key, in one run.

    python -m bench.tokens [--n 2000]

Prints tokens per second for each and the ratios (targets: minting within 1.2x of plain pyjwt,
verification within 1.5x).
"""

from __future__ import annotations

import argparse
import random
import time

import jwt

from app.auth.token import TokenVerifier
from harness.issuer import ActiveOrg, Issuer

ISSUER = "https://iam-harness.clerk.accounts.dev"
AZP = "http://127.0.0.1:8000"


def _rate(n: int, work: object) -> float:
    assert callable(work)
    started = time.perf_counter()
    for _ in range(n):
        work()
    return n / (time.perf_counter() - started)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    issuer = Issuer(issuer_url=ISSUER, authorized_party=AZP, rng=random.Random(1))
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
    print(f"{args.n} tokens each, RSA-2048, one process")
    print(f"mint   plain jwt.encode : {plain_mint:8.0f}/s   harness Issuer.mint  : {harness_mint:8.0f}/s   "
          f"cost ratio {plain_mint / harness_mint:.2f}x (target <= 1.2x)")  # fmt: skip
    print(f"verify plain jwt.decode : {plain_verify:8.0f}/s   app TokenVerifier    : {app_verify:8.0f}/s   "
          f"cost ratio {plain_verify / app_verify:.2f}x (target <= 1.5x)")  # fmt: skip
    print("JWKS fetches: the reference app verifies networkless (CLERK_JWT_KEY): 0 per run")


if __name__ == "__main__":
    main()
