"""C1 for targets whose own login hands out JWTs: each principal's real token, re-signed as an attacker can
(unsigned, an empty or weak HMAC secret, a foreign RSA key), as it is and with `sub` swapped for a principal
of another organisation, is refused where the real token reads a record; and its own secret is not one of the
weak ones, tried offline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.clerk.attacks import crack, login_forgeries, parse_jwt
from harness.engine.exchange import Caller
from harness.engine.world import ClerkCredentials, Principal, World

__all__ = ["LoginToken", "login_tokens", "login_tokens_resist_forgery"]


@dataclass(frozen=True)
class LoginToken:
    """A principal's JWT as the target handed it out, and how it is presented."""

    principal: Principal
    header: str
    prefix: str
    token: str
    jose: dict[str, Any]
    claims: dict[str, Any]

    def present(self, token: str) -> dict[str, str]:
        """Headers presenting `token` as this principal presents its own."""
        return {self.header: self.prefix + token}


def login_tokens(world: World) -> list[LoginToken]:
    """The principals whose credentials carry a JWT (a login's token, or a static bearer token)."""
    found = []
    for principal in world.principals():
        if principal.anonymous or isinstance(principal.credentials, ClerkCredentials):
            continue  # Clerk's sessions are the catalogue's to forge; anonymous presents nothing
        for name, value in principal.credentials.headers().items():
            candidate = value.rsplit(" ", 1)[-1]
            if (parsed := parse_jwt(candidate)) is not None:
                prefix = value[: len(value) - len(candidate)]
                found.append(LoginToken(principal, name, prefix, candidate, parsed[0], parsed[1]))
                break
    return found


def _read_path(world: World, principal: Principal) -> str | None:
    org = world.orgs.get(principal.org or "")
    return org.canaries[0].read_path if org is not None and org.canaries else None


def login_tokens_resist_forgery(
    base_url: str, world: World, logins: list[LoginToken], transport: httpx.BaseTransport | None
) -> Judged:
    """Each principal's own token re-signed (claims kept), and with `sub` swapped for a principal of another
    organisation: sent where the real token succeeds, every one must fail."""
    judged = Judged(("C1",))
    for login in logins:
        name = login.principal.name
        if (secret := crack(login.token)) is not None:
            detail = f"{name}'s token is signed with the weak secret {secret!r} (found offline)"
            judged.find(FindingKind.WEAK_TOKEN_SECRET, "(offline)", name, detail)
        plans = [("re-signed", login.claims, login)]
        other = next((o for o in logins if o.principal.org != login.principal.org and "sub" in o.claims), None)
        if other is not None and "sub" in login.claims:
            plans.append(
                (f"sub swapped to {other.principal.name}'s", {**login.claims, "sub": other.claims["sub"]}, other)
            )
        for label, claims, owner in plans:
            path = _read_path(world, owner.principal)
            operation = f"GET {path}"
            if path is None:
                detail = f"{name}: no record of {owner.principal.name}'s organisation to read: not exercised"
                judged.find(FindingKind.NOT_EXERCISED, "GET (a canary)", name, detail)
                continue
            with Caller(base_url, owner.present(owner.token), name=owner.principal.name, transport=transport) as real:
                control = real.call("GET", path)
            if not control.ok:
                detail = f"{owner.principal.name}'s real token answered {control.status} on {operation}: not exercised"
                judged.find(FindingKind.NOT_EXERCISED, operation, name, detail, control)
                continue
            statuses: dict[int, int] = {}
            for probe in login_forgeries(login.jose, claims):
                forger = f"{name} forged by {probe.attack}"
                with Caller(base_url, login.present(probe.token), name=forger, transport=transport) as caller:
                    seen = caller.call("GET", path)
                statuses[seen.status] = statuses.get(seen.status, 0) + 1
                if judged.unanswered(seen, operation, forger):
                    continue
                if seen.ok:
                    detail = f"{name}'s token {label}, forged by {probe.attack}, answered {seen.status} on {operation}"
                    judged.find(FindingKind.FORGERY_ACCEPTED, operation, name, detail, seen)
                    judged.add(f"accepted forgery ({name}, {label}, {probe.attack}): {probe.token}")
            judged.add(f"{name}'s token {label}: {sum(statuses.values())} forgeries on {operation} -> {statuses}")
    return judged
