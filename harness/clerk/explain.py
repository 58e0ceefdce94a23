"""Explaining a token: its header and claims, and every rule of Clerk's session-token format it breaks."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

import jwt

from harness.clerk.issuer import SESSION_CATEGORY, Issuer

__all__ = ["LEEWAY", "Explanation", "decode_segment", "explain"]

LEEWAY = 5  # seconds, as Clerk's SDKs allow on exp, nbf and iat


@dataclass(frozen=True)
class Explanation:
    """What a token says and which rules it breaks (none: a valid session token of this issuer)."""

    header: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    broken: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The explanation as text, one fact a line."""
        out = [
            f"header: {json.dumps(self.header, sort_keys=True)}",
            f"claims: {json.dumps(self.claims, sort_keys=True)}",
        ]
        out += [f"BROKEN: {rule}" for rule in self.broken] or ["valid: breaks no rule"]
        return out


def decode_segment(raw: str) -> Any:
    """The JSON in one base64url segment of a JWS (padding restored); ValueError if it is not that, or nests deeper
    than Python's JSON reader goes."""
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except RecursionError:
        raise ValueError("nested too deep to read") from None


def explain(token: str, *, now: int, issuer: Issuer | None = None) -> Explanation:
    """Every rule `token` breaks, judged at `now` against `issuer` (its keys and `iss`) when given."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return Explanation(broken=(f"malformed: a JWS has 3 dot-separated segments, this has {len(parts)}",))
    try:
        header, claims = decode_segment(parts[0]), decode_segment(parts[1])
    except (ValueError, UnicodeDecodeError) as exc:
        return Explanation(broken=(f"malformed: a segment is not base64url-encoded JSON ({exc})",))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return Explanation(broken=("malformed: header and payload must be JSON objects",))
    broken = [*_header_rules(header, parts[2], issuer), *_claim_rules(claims, now, issuer)]
    if not broken and issuer is not None:
        broken += _signature_rule(token, header, issuer)
    return Explanation(header, claims, tuple(broken))


def _header_rules(header: dict[str, Any], signature: str, issuer: Issuer | None) -> list[str]:
    broken = []
    alg = header.get("alg")
    if isinstance(alg, str) and alg.lower() == "none":
        broken.append(f"alg {alg!r}: an unsigned token (RFC 8725 3.1: never accept 'none')")
    elif alg != "RS256":
        broken.append(f"alg {alg!r} is not allowed: Clerk signs with RS256 only (RFC 8725 3.1)")
    if not signature:
        broken.append("no signature")
    if header.get("typ", "JWT") != "JWT":
        broken.append(f"typ {header.get('typ')!r}: Clerk session tokens are typ JWT")
    if "cat" in header and header["cat"] != SESSION_CATEGORY:
        broken.append(f"cat {header['cat']!r} is not the session category {SESSION_CATEGORY} (a machine token?)")
    for key in ("jwk", "jku", "x5u", "x5c"):
        if key in header:
            broken.append(f"header {key}: a key named by the token itself must never be trusted (RFC 8725 3.10)")
    if issuer is not None and header.get("kid") not in {kid for kid, _ in issuer.keys}:
        broken.append(f"kid {header.get('kid')!r} is not one of this issuer's keys")
    return broken


def _claim_rules(claims: dict[str, Any], now: int, issuer: Issuer | None) -> list[str]:
    broken = []
    times: dict[str, float] = {}  # the NumericDates that are finite numbers, the only ones compared with now
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            broken.append(f"{name} must be a number (NumericDate), got {value!r}")
        elif isinstance(value, int | float) and not math.isfinite(value):
            broken.append(f"{name} must be a finite number (NumericDate), got {value!r}")
        elif isinstance(value, int | float):
            times[name] = value
    exp, nbf, iat = times.get("exp"), times.get("nbf"), times.get("iat")
    if "exp" not in claims:
        broken.append("exp is missing: a session token must expire")
    elif isinstance(exp, int | float) and exp + LEEWAY < now:
        broken.append(f"expired {int(now - exp)} s ago (exp {int(exp)}; leeway {LEEWAY} s)")
    if isinstance(nbf, int | float) and nbf - LEEWAY > now:
        broken.append(f"not valid for another {int(nbf - now)} s (nbf in the future beyond {LEEWAY} s)")
    if isinstance(iat, int | float) and iat - LEEWAY > now:
        broken.append(f"issued {int(iat - now)} s in the future (iat beyond {LEEWAY} s)")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        broken.append(f"sub must be a non-empty string, got {sub!r}")
    if issuer is not None and claims.get("iss") != issuer.issuer_url:
        broken.append(f"iss {claims.get('iss')!r} is not {issuer.issuer_url!r}")
    if claims.get("sts") == "pending":
        broken.append("sts pending: signed in, but must still choose an organisation before being let in")
    if "v" in claims and claims["v"] != 2:
        broken.append(f"v {claims['v']!r}: Clerk session tokens are v 2 (or carry no v: version 1)")
    return broken


def _signature_rule(token: str, header: dict[str, Any], issuer: Issuer) -> list[str]:
    key = next(k for kid, k in issuer.keys if kid == header.get("kid"))
    try:
        jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        return ["the signature does not verify with the key its kid names"]
    except jwt.PyJWTError as exc:
        return [f"does not verify: {exc}"]
    return []
